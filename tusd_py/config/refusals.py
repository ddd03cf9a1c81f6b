"""Configurations that cannot run, and why: pure rules over a :class:`Config`, asked before serving.

Each returns the one-line reason the server prints when it refuses to start, or None.
"""

from __future__ import annotations

from tusd_py.config.values import Config


def processes_refusal(config: Config) -> str | None:
    """Why ``--processes N`` (N > 1) cannot run with this configuration, or None when it can.

    Worker processes share no memory: with the in-process locker two workers would both hold an
    upload's lock and interleave its bytes, and each would keep its own quota ledger; SQLite's one
    writer would serialise (or, on a network mount, corrupt) recordings and jobs. The shared
    engines close both holes, so both are required, not merely advised.
    """
    if config.processes <= 1:
        return None
    missing = [
        flag
        for flag, value in (
            ("--redis-url", config.redis_url),
            ("--database-url", config.database_url),
        )
        if not value
    ]
    if not missing:
        return None
    return (
        f"--processes {config.processes} needs {' and '.join(missing)}: worker processes share upload locks "
        "through Redis and recordings, jobs and quotas through PostgreSQL; give both or use --processes 1"
    )


def signing_key_refusal(config: Config) -> str | None:
    """Why signed download links would break with this configuration, or None when they work.

    A link is checked by whichever process or instance the next request reaches, so every one of
    them must hold the same key. Several can serve once ``--processes`` is above 1 or the upload
    locks are shared (``--redis-url``, docs/scaling.md); then the key must come from
    something they share: ``--download-signing-key``, or ``--jwt-secret`` to derive it from. A key
    made at random per process would make most links answer 403, so the server does not start.
    """
    if config.download_signing_key or config.jwt_secret:
        return None
    several = f"--processes {config.processes}" if config.processes > 1 else "--redis-url" if config.redis_url else None
    if several is None:
        return None
    return (
        f"{several} lets several processes or instances serve, and a signed download link must be valid on all "
        "of them: give them the same --download-signing-key (at least 32 characters; "
        "TUSD_PY_DOWNLOAD_SIGNING_KEY or --download-signing-key-file), or --jwt-secret to derive it from"
    )
