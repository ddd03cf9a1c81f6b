"""Errors as values: a status, a short plain-text reason and extra headers.

Handlers and pure protocol functions raise :class:`TusError`; one middleware turns it into a
``text/plain`` response (or, for the resumable-upload draft, an RFC 9457 problem document whose
``detail`` is that reason), so every 4xx the server sends carries a reason a person can read.
"""

from __future__ import annotations

from collections.abc import Mapping

from tusd_py.model.error_codes import ErrorCode, default_code


class TusError(Exception):
    """``problem``: members of an RFC 9457 problem document; when set, the error is answered as
    ``application/problem+json`` (the resumable-upload draft's errors) instead of plain text.
    ``code``: its name in the catalog (:mod:`tusd_py.model.error_codes`); None takes the status's default."""

    def __init__(
        self,
        status: int,
        reason: str,
        headers: Mapping[str, str] | None = None,
        problem: Mapping[str, object] | None = None,
        code: ErrorCode | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers: dict[str, str] = dict(headers or {})
        self.problem: dict[str, object] | None = dict(problem) if problem is not None else None
        self.code: ErrorCode = code if code is not None else default_code(status)

    def __repr__(self) -> str:
        return f"TusError({self.status}, {self.reason!r})"


def bad_request(reason: str) -> TusError:
    return TusError(400, reason)


def not_found(reason: str = "upload not found", code: ErrorCode = ErrorCode.UPLOAD_NOT_FOUND) -> TusError:
    return TusError(404, reason, code=code)


def too_large(reason: str) -> TusError:
    return TusError(413, reason)


def insufficient_storage(headers: Mapping[str, str] | None = None) -> TusError:
    """507 (RFC 4918): the disk is full. Not the client's fault, and no quick retry will help."""
    return TusError(507, "the server's storage is full; any bytes received so far are kept", headers)


def lock_lost(reason: str, *, unreachable: bool, headers: Mapping[str, str] | None = None) -> TusError:
    """A commit refused by its fence: 423 (a newer request holds the upload), or 503 when the lock
    service could not confirm this holder (nothing is written without a confirmed lock)."""
    if unreachable:
        return TusError(503, reason, {**(headers or {}), "Retry-After": "2"}, code=ErrorCode.LOCK_SERVICE_UNAVAILABLE)
    return TusError(423, reason, headers, code=ErrorCode.UPLOAD_LOCKED)


class StateStoreUnavailable(TusError):
    """503: the shared state database (PostgreSQL) cannot be reached. Raised by the PostgreSQL
    recording store and quota ledger, so creation and the Recordings API answer with a reason
    while the bytes of existing uploads keep flowing (PATCH needs no database)."""

    def __init__(self, detail: str = "") -> None:
        reason = "the state database (PostgreSQL) is unreachable; retry later"
        super().__init__(503, reason, {"Retry-After": "5"}, code=ErrorCode.STATE_STORE_UNAVAILABLE)
        self.detail = detail
