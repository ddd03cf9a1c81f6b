"""Why the server could not start, in one line that names the flag to change.

The README promises the server "refuses to start with the reason". Everything that can fail at
start (the listening socket, the storage, the state database) runs before "serving" is logged;
what fails there is explained here instead of a traceback. Anything not recognised is a bug and
keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import sqlite3

from storage_backends.base import StorageError
from tusd_py.config import Config
from tusd_py.errors import StateStoreUnavailable

_S3_FLAGS = "check --s3-bucket, --s3-endpoint, --s3-region, --s3-path-style and the AWS credentials"


class ListenError(OSError):
    """The listening socket could not be opened (raised by tusd_py.connections.serve)."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        # asyncio's strerror repeats the address ("error while attempting to bind on ..."): the plain one.
        reason = os.strerror(cause.errno) if cause.errno else str(cause)
        super().__init__(cause.errno, reason)
        self.host = host
        self.port = port


def explain_startup_failure(exc: BaseException, config: Config) -> str | None:
    """The one-line reason for ``exc`` raised while starting, or None for an unexpected error."""
    if isinstance(exc, ListenError) and config.unix_socket is not None:
        return f"cannot listen on the UNIX socket {exc.host}: {exc.strerror}; change --unix-socket"
    if isinstance(exc, ListenError):
        where = f"{exc.host}:{exc.port}"
        if exc.errno == errno.EADDRINUSE:
            return f"cannot listen on {where}: the address is already in use; change --port or stop the other server"
        if exc.errno == errno.EACCES:
            return f"cannot listen on {where}: permission denied (ports below 1024 need privileges); change --port"
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or exc.errno is None:
            return f"cannot listen on {where}: {exc.strerror}; change --host to an address of this machine"
        return f"cannot listen on {where}: {exc.strerror}; change --host or --port"
    if isinstance(exc, StateStoreUnavailable):
        detail = " ".join(exc.detail.split())
        return f"cannot reach the state database: {detail}; check --database-url and that PostgreSQL runs"
    if type(exc).__name__ == "LockServiceError":  # tusd_py.redis_locking, imported only with --redis-url
        return f"{_one_line(exc)}; check --redis-url (and that Redis is running)"
    if isinstance(exc, StorageError):
        hint = _S3_FLAGS if config.storage == "s3" else "change --storage-dir"
        return f"{_one_line(exc)}; {hint}"
    # The storage wraps its own errors in StorageError; what is left at start is the SQLite state file.
    if isinstance(exc, sqlite3.Error | OSError):
        path = config.state_db_path
        return f"cannot open the state database {path}: {_one_line(exc)}; change --state-db or --storage-dir"
    return None


def signing_key_refusal(config: Config) -> str | None:
    """Why signed download links would break with this configuration, or None when they work.

    A link is checked by whichever process or instance the next request reaches, so every one of
    them must hold the same key. Several instances can serve once the upload locks are shared
    (``--redis-url``, the README's "Scaling out"); then the key must come from something they
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


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
