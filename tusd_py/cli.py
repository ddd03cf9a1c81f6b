"""The ``tusd-py`` command. Every flag has a TUSD_PY_* environment variable twin.

tusd-py                     serve (the default command)
tusd-py serve --port 8080   same, with flags
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from aiohttp import web

from tusd_py.config import Config

ENV_PREFIX = "TUSD_PY_"

# (flag, Config field, help). Types come from Config, so flags and env vars convert the same way.
_OPTIONS: list[tuple[str, str, str]] = [
    ("--host", "host", "address to listen on"),
    ("--port", "port", "port to listen on"),
    ("--base-path", "base_path", "URL path of the upload collection"),
    ("--storage", "storage", "storage backend: filesystem or s3"),
    ("--storage-dir", "storage_dir", "directory of the filesystem backend"),
    ("--max-size", "max_size", "largest upload accepted, in bytes (Tus-Max-Size)"),
    ("--cors-origins", "cors_origins", "comma-separated allowed browser origins, * for any"),
    ("--log-format", "log_format", "auto, json or console"),
    ("--log-level", "log_level", "debug, info, warning or error"),
    ("--lock-timeout", "lock_timeout", "seconds a request waits for another one on the same upload"),
    ("--body-idle-timeout", "body_idle_timeout", "seconds of silence after which a PATCH body is cut"),
    ("--shutdown-timeout", "shutdown_timeout", "seconds in-flight requests get on SIGTERM"),
    ("--header-timeout", "header_timeout", "seconds a client has to send its request headers (0: no limit)"),
    ("--keepalive-timeout", "keepalive_timeout", "seconds an idle keep-alive connection stays open"),
    (
        "--max-connections",
        "max_connections",
        "connections served at once, more get 503 (0: three quarters of the open-file limit)",
    ),
    ("--disable-extensions", "disabled_extensions", "comma-separated tus extensions to turn off"),
    ("--expire-after", "expire_after", "seconds without activity after which unfinished uploads expire (0: never)"),
    ("--sweep-interval", "sweep_interval", "seconds between background expiration sweeps (0: none)"),
    ("--jwt-secret", "jwt_secret", "shared secret for HS256/384/512 tokens (turns auth on)"),
    ("--jwt-public-key", "jwt_public_key", "PEM public key file for RS256/ES256/EdDSA tokens (turns auth on)"),
    ("--jwks", "jwks", "JWKS file; the token's kid picks the key (turns auth on)"),
    ("--jwt-algorithms", "jwt_algorithms", "comma-separated allowed algorithms"),
    ("--jwt-issuer", "jwt_issuer", "required iss claim"),
    ("--jwt-audience", "jwt_audience", "required aud claim"),
    ("--jwt-user-claim", "jwt_user_claim", "claim holding the user id"),
    ("--jwt-leeway", "jwt_leeway", "seconds of clock skew allowed for exp/nbf/iat"),
    (
        "--quota-bytes",
        "quota_bytes",
        "bytes each user may store, unfinished uploads' declared lengths included (0: no limit)",
    ),
    ("--quota-unfinished", "quota_unfinished", "unfinished uploads each user may have (0: no limit)"),
    ("--hooks-url", "hooks_url", "URL receiving hook events as signed JSON POSTs"),
    ("--hooks-secret", "hooks_secret", "HMAC-SHA256 secret for the Tusd-Py-Signature header"),
    ("--hooks-events", "hooks_events", "comma-separated hook types sent to the webhook (default all)"),
    ("--hooks-timeout", "hooks_timeout", "seconds per webhook attempt"),
    ("--hooks-retries", "hooks_retries", "retries of post-* webhooks"),
    ("--s3-bucket", "s3_bucket", "S3 bucket (it must exist)"),
    ("--s3-prefix", "s3_prefix", "key prefix of every object this server writes"),
    ("--s3-endpoint", "s3_endpoint", "S3-compatible endpoint URL (default: AWS)"),
    ("--s3-region", "s3_region", "S3 region (default: from the AWS configuration)"),
    ("--s3-part-size", "s3_part_size", "preferred multipart part size in bytes (raised to fit 10,000 parts)"),
    ("--s3-part-concurrency", "s3_part_concurrency", "S3 parts in memory and uploading at once, for the whole server"),
    ("--state-db", "state_db", "SQLite file for recordings and jobs (default: state.sqlite3 in the storage dir)"),
    ("--workers", "workers", "processing jobs run at once (0: record states but process nothing)"),
    ("--job-attempts", "job_attempts", "attempts per processing job before it is marked failed"),
    ("--job-retry-delay", "job_retry_delay", "seconds before the first retry, doubling each time"),
    ("--compression-threshold", "compression_threshold", "bytes above which lossless/PCM audio gets advice"),
    ("--voice-bitrate", "voice_bitrate", "bit/s of the Opus target for size estimates"),
    ("--cleanup-failed-days", "cleanup_failed_days", "delete failed recordings older than this many days (0: never)"),
    ("--cleanup-interval", "cleanup_interval", "seconds between background cleanups (0: none)"),
    ("--metrics-port", "metrics_port", "serve /metrics on this port only, not on --port (0: on --port)"),
    ("--readyz-timeout", "readyz_timeout", "seconds each /readyz check may take"),
    (
        "--download-signing-key",
        "download_signing_key",
        "HMAC key of signed download URLs (default: derived from --jwt-secret)",
    ),
    ("--download-url-ttl", "download_url_ttl", "seconds a signed download URL stays valid"),
]
_LIST_FIELDS = {"cors_origins", "disabled_extensions", "jwt_algorithms", "hooks_events"}
_BOOL_FLAGS = [
    ("--behind-proxy", "behind_proxy", "trust X-Forwarded-*/Forwarded headers for URLs"),
    ("--fsync", "fsync", "filesystem: flush every PATCH to disk before answering (survives power loss)"),
    ("--hooks-fail-open", "hooks_fail_open", "let requests through when a pre-* webhook cannot be reached"),
    ("--s3-path-style", "s3_path_style", "path-style S3 addressing (most self-hosted S3 servers need it)"),
    ("--demo", "demo", "serve the offline-first recorder page at /demo/"),
    ("--no-metrics", "no_metrics", "do not serve Prometheus metrics at /metrics"),
]


_BOOL_DESTS = {dest for _, dest, _ in _BOOL_FLAGS}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tusd-py", description="tus resumable-upload server")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the server (default)")
    sweep = sub.add_parser("sweep", help="delete expired unfinished uploads once and exit")
    cleanup = sub.add_parser("cleanup", help="delete failed recordings older than --cleanup-failed-days once")
    token = sub.add_parser("dev-token", help="print a JWT for --jwt-secret, for development and tests")
    token.add_argument("--user", required=True, help="the user id to put in the token")
    token.add_argument("--ttl", type=float, default=3600.0, help="lifetime in seconds")
    for target in (parser, serve, sweep, cleanup, token):
        for flag, dest, help_text in _OPTIONS:
            env = ENV_PREFIX + dest.upper()
            target.add_argument(flag, dest=dest, default=None, help=f"{help_text} (env {env})")
        for flag, dest, help_text in _BOOL_FLAGS:
            env = ENV_PREFIX + dest.upper()
            target.add_argument(
                flag, dest=dest, action="store_const", const=True, default=None, help=f"{help_text} (env {env}=1)"
            )
    return parser


def load_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    """Flag > environment variable > default; values converted and validated by msgspec."""
    environ = dict(os.environ) if environ is None else environ
    raw: dict[str, Any] = {}
    for _, dest, _ in [*_OPTIONS, *_BOOL_FLAGS]:
        value = getattr(args, dest, None)
        if value is None:
            value = environ.get(ENV_PREFIX + dest.upper())
        if value is None or value == "":
            continue
        if dest in _LIST_FIELDS and isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if dest in _BOOL_DESTS and isinstance(value, str):
            value = value.strip().lower() in ("1", "true", "yes", "on")
        raw[dest] = value
    return msgspec.convert(raw, Config, strict=False)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args)
    except (msgspec.ValidationError, ValueError) as exc:
        print(f"tusd-py: invalid configuration: {exc}", file=sys.stderr)
        return 2
    from tusd_py.app import make_app
    from tusd_py.logs import configure_logging

    configure_logging(config.log_format, config.log_level)
    if args.command == "sweep":
        return asyncio.run(_sweep_once(config))
    if args.command == "cleanup":
        return asyncio.run(_cleanup_once(config))
    if args.command == "dev-token":
        return _print_dev_token(config, args.user, args.ttl)
    try:
        app = make_app(config)
    except ValueError as exc:  # AuthConfigError and friends: an unsafe or incomplete configuration
        print(f"tusd-py: refusing to start: {exc}", file=sys.stderr)
        return 2
    return _serve(app, config)


def _serve(app: web.Application, config: Config) -> int:
    from tusd_py.connections import default_max_connections, raise_open_file_limit, serve
    from tusd_py.logs import REPEAT_WINDOW

    log = structlog.get_logger("tusd_py")
    limit = raise_open_file_limit()
    max_connections = config.max_connections or default_max_connections(limit.soft)
    log.info("open-file limit", soft=limit.soft, hard=limit.hard, was=limit.was, max_connections=max_connections)
    if max_connections >= limit.soft:
        log.warning("--max-connections is not below the open-file limit: accept() may fail with EMFILE")
    log.info("serving", url=f"http://{config.host}:{config.port}{config.base_path}", storage=config.storage)
    site = {
        "host": config.host,
        "port": config.port,
        "max_connections": max_connections,
        "open_files": limit.soft,
        "header_timeout": config.header_timeout,
        "keepalive_timeout": config.keepalive_timeout,
    }
    try:
        serve(app, site, config.shutdown_timeout, tick=REPEAT_WINDOW)
    except OSError as exc:  # the port is taken, the address is not ours...
        log.error("cannot listen", host=config.host, port=config.port, error=str(exc))
        return 1
    return 0


def _print_dev_token(config: Config, user: str, ttl: float) -> int:
    from tusd_py.auth import AuthConfigError, mint_dev_token
    from tusd_py.wiring import auth_config

    try:
        print(mint_dev_token(auth_config(config), user, ttl))
    except (AuthConfigError, ValueError) as exc:
        print(f"tusd-py: cannot mint a token: {exc}", file=sys.stderr)
        return 2
    return 0


async def _cleanup_once(config: Config) -> int:
    from tusd_py.app import build_service
    from tusd_py.cleanup import cleanup_failed
    from tusd_py.wiring import build_pipeline

    service = build_service(config)
    pipeline = build_pipeline(config, service.store)
    await service.store.start()
    await pipeline.start(workers=False)
    try:
        removed = await cleanup_failed(service, pipeline, config.cleanup_failed_days)
    finally:
        await pipeline.stop()
        await service.store.close()
    print(f"deleted {len(removed)} failed recordings older than {config.cleanup_failed_days:g} days")
    return 0


async def _sweep_once(config: Config) -> int:
    from extensions.expiration import sweep
    from tusd_py.app import build_service

    service = build_service(config)
    await service.store.start()
    try:
        report = await sweep(service)
    finally:
        await service.store.close()
    print(f"expired {report.expired} uploads, skipped {report.skipped_busy} busy, removed {report.orphans} orphans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
