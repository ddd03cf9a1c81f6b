"""Configurations that cannot run, and why: pure rules over a :class:`Config`, asked before serving.

Each returns the one-line reason the server prints when it refuses to start, or None.
"""

from __future__ import annotations

from tusd_py.config.values import Config


def signing_key_refusal(config: Config) -> str | None:
    """Why signed download links would break with this configuration, or None when they work.

    A link is checked by whichever process or instance the next request reaches, so every one of
    them must hold the same key. Several instances can serve once the upload locks are shared
    (``--redis-url``, docs/scaling.md); then the key must come from something they
    share: ``--download-signing-key``, or ``--jwt-secret`` to derive it from. A key made at random
    per instance would make most links answer 403, so the server does not start. The workers of
    ``--processes N`` on one host without Redis get one key per run from their supervisor.
    """
    if config.download_signing_key or config.jwt_secret or not config.redis_url:
        return None
    several = f"--processes {config.processes} with --redis-url" if config.processes > 1 else "--redis-url"
    return (
        f"{several} lets several processes or instances serve, and a signed download link must be valid on all "
        "of them: give them the same --download-signing-key (at least 32 characters; "
        "TUSD_PY_DOWNLOAD_SIGNING_KEY or --download-signing-key-file), or --jwt-secret to derive it from"
    )
