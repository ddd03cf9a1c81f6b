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

from tusd_py.config.values import Config
from tusd_py.model.errors import StateStoreUnavailable
from tusd_py.model.storage_errors import StorageError

_S3_FLAGS = "check --s3-bucket, --s3-endpoint, --s3-region, --s3-path-style and the AWS credentials"


class ListenError(OSError):
    """The listening socket could not be opened (raised by tusd_py.server.connections.serve)."""

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
    if type(exc).__name__ == "LockServiceError":  # tusd_py.locks.redis_locker, imported only with --redis-url
        return f"{_one_line(exc)}; check --redis-url (and that Redis is running)"
    if isinstance(exc, StorageError):
        hint = _S3_FLAGS if config.storage == "s3" else "change --storage-dir"
        return f"{_one_line(exc)}; {hint}"
    # The storage wraps its own errors in StorageError; what is left at start is the SQLite state file.
    if isinstance(exc, sqlite3.Error | OSError):
        path = config.state_db_path
        return f"cannot open the state database {path}: {_one_line(exc)}; change --state-db or --storage-dir"
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
