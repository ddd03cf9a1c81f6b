"""Errors as values: a status, a short plain-text reason and extra headers.

Handlers and pure protocol functions raise :class:`TusError`; one middleware turns it into a
``text/plain`` response, so every 4xx the server sends carries a reason a person can read.
"""

from __future__ import annotations

from collections.abc import Mapping


class TusError(Exception):
    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers: dict[str, str] = dict(headers or {})

    def __repr__(self) -> str:
        return f"TusError({self.status}, {self.reason!r})"


def bad_request(reason: str) -> TusError:
    return TusError(400, reason)


def not_found(reason: str = "upload not found") -> TusError:
    return TusError(404, reason)


def too_large(reason: str) -> TusError:
    return TusError(413, reason)


def insufficient_storage(headers: Mapping[str, str] | None = None) -> TusError:
    """507 (RFC 4918): the disk is full. Not the client's fault, and no quick retry will help."""
    return TusError(507, "the server's storage is full; any bytes received so far are kept", headers)


class StateStoreUnavailable(TusError):
    """503: the shared state database (PostgreSQL) cannot be reached. Raised by the PostgreSQL
    recording store and quota ledger, so creation and the Recordings API answer with a reason
    while the bytes of existing uploads keep flowing (PATCH needs no database)."""

    def __init__(self, detail: str = "") -> None:
        reason = "the state database (PostgreSQL) is unreachable; retry later"
        super().__init__(503, reason, {"Retry-After": "5"})
        self.detail = detail
