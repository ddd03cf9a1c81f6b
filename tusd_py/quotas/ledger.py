"""Per-user quotas: stored bytes and unfinished uploads.

Bytes count what a user has claimed, not only what has arrived: finished uploads by their size,
unfinished ones by their declared Upload-Length (by their offset while the length is deferred).
Otherwise a client could open many large uploads at once and overrun the limit later.

:class:`QuotaLedger` is the interface the server awaits; two implementations keep the same rules:

* :class:`MemoryQuotaLedger` (the default, one process): in memory, rebuilt from the storage
  backend at start-up and kept current by the upload lifecycle. Checking and reserving happen in
  one synchronous step (no await in between), so two concurrent creations by one user cannot
  both slip under the limit.
* :class:`tusd_py.quotas.postgres.PostgresQuotaLedger` (``--database-url``): durable and shared by
  every instance; a reservation is one conditional UPDATE of the user's usage row, so instances
  racing for the last bytes never jointly exceed the limit.

Both are updated at the same points: reserved at creation (released if storing fails), grown when
a deferred length becomes known or bytes arrive, settled at finish, released at termination
(whoever deletes: DELETE, expiry, cleanup, the Recordings API; all go through
``TusService.delete_upload``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from storage_backends.base import DataStore
from tusd_py.database.reconcile import Reconciler
from tusd_py.model.error_codes import ErrorCode
from tusd_py.model.errors import TusError
from tusd_py.model.upload import UploadInfo
from tusd_py.protocol import upload_state
from tusd_py.protocol.upload_state import claimed_bytes
from tusd_py.telemetry import metrics

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    max_bytes: int | None = 500 * MIB  # None: unlimited
    max_unfinished: int | None = 50


@dataclass(slots=True)
class Usage:
    bytes: int = 0
    unfinished: int = 0


class QuotaExceeded(TusError):
    """413 from a user's quota; ``limit`` names which one ("bytes" or "unfinished")."""

    def __init__(self, limit: str, reason: str) -> None:
        super().__init__(413, reason, code=ErrorCode.QUOTA_EXCEEDED)
        self.limit = limit


def check_quota(usage: Usage, limits: QuotaLimits, *, add_bytes: int, add_unfinished: int) -> None:
    """Raise 413 with a reason stating the limit if the addition would exceed a quota. Pure."""
    most = limits.max_unfinished
    if most is not None and add_unfinished and usage.unfinished + add_unfinished > most:
        raise QuotaExceeded(
            "unfinished", f"quota exceeded: at most {most} unfinished uploads per user (you have {usage.unfinished})"
        )
    cap = limits.max_bytes
    if cap is not None and add_bytes and usage.bytes + add_bytes > cap:
        left = max(0, cap - usage.bytes)
        reason = f"quota exceeded: {cap} bytes per user; {usage.bytes} used, {left} left, {add_bytes} requested"
        raise QuotaExceeded("bytes", reason)


class QuotaLedger(abc.ABC):
    """Per-user usage. Methods are coroutines; the PostgreSQL ledger raises StateStoreUnavailable (503)."""

    limits: QuotaLimits

    async def open(self) -> None:  # noqa: B027 - optional: a ledger with a connection opens it
        """Get ready (connect); the memory ledger has nothing to open."""

    async def close(self) -> None:  # noqa: B027 - optional, like open
        """Release what open took."""

    @abc.abstractmethod
    async def usage(self, user: str) -> Usage:
        """The user's current usage (a copy)."""

    @abc.abstractmethod
    async def rebuild(self, store: DataStore) -> None:
        """At start-up: account for the uploads the storage holds."""

    @abc.abstractmethod
    async def reserve(self, info: UploadInfo) -> None:
        """Check and record a new upload atomically; raise :class:`QuotaExceeded` (413)."""

    @abc.abstractmethod
    async def grow(self, info: UploadInfo, new_bytes: int) -> None:
        """A deferred upload claims more (its length became known, or bytes arrived); may raise 413."""

    @abc.abstractmethod
    async def room(self, user: str | None) -> int | None:
        """Bytes this user may still claim (None: unlimited)."""

    @abc.abstractmethod
    async def finished(self, info: UploadInfo) -> None:
        """The upload is complete: it claims its final size and no longer counts as unfinished. Idempotent."""

    @abc.abstractmethod
    async def release(self, upload_id: str) -> None:
        """The upload is gone (or was never stored): forget its claim. Idempotent."""


def refused(exc: QuotaExceeded) -> QuotaExceeded:
    metrics.QUOTA_REFUSALS.labels(exc.limit).inc()
    return exc


@dataclass
class MemoryQuotaLedger(QuotaLedger):
    limits: QuotaLimits
    _claims: dict[str, tuple[str, int, bool]] = field(default_factory=dict)  # upload -> (owner, bytes, unfinished)
    _usage: dict[str, Usage] = field(default_factory=dict)

    async def usage(self, user: str) -> Usage:
        return self._usage_now(user)

    def _usage_now(self, user: str) -> Usage:
        current = self._usage.get(user, Usage())
        return Usage(current.bytes, current.unfinished)

    async def rebuild(self, store: DataStore) -> None:
        self._claims.clear()
        self._usage.clear()
        async for info in store.list_uploads():
            if info.owner is not None:
                self.adopt(info.id, info.owner, claimed_bytes(info), upload_state.counts_as_unfinished(info))

    def adopt(self, upload_id: str, owner: str, nbytes: int, unfinished: bool) -> None:
        """Count a stored upload's claim as found, unchecked (rebuilding; tusd_py/host/service.py too)."""
        self._set(upload_id, owner, nbytes, unfinished)

    async def reserve(self, info: UploadInfo) -> None:
        """Check and record a new upload in one step (no await in between)."""
        if info.owner is None:
            return
        self._check(info.owner, add_bytes=claimed_bytes(info), add_unfinished=1)
        self._set(info.id, info.owner, claimed_bytes(info), True)

    async def grow(self, info: UploadInfo, new_bytes: int) -> None:
        """A deferred upload claims more (its length became known, or bytes arrived)."""
        if info.owner is None or info.id not in self._claims:
            return
        owner, current, unfinished = self._claims[info.id]
        if new_bytes > current:
            self._check(owner, add_bytes=new_bytes - current, add_unfinished=0)
            self._set(info.id, owner, new_bytes, unfinished)

    def _check(self, owner: str, *, add_bytes: int, add_unfinished: int) -> None:
        try:
            check_quota(self._usage_now(owner), self.limits, add_bytes=add_bytes, add_unfinished=add_unfinished)
        except QuotaExceeded as exc:
            raise refused(exc) from None

    async def room(self, user: str | None) -> int | None:
        if user is None or self.limits.max_bytes is None:
            return None
        return max(0, self.limits.max_bytes - self._usage_now(user).bytes)

    async def finished(self, info: UploadInfo) -> None:
        if info.owner is not None and info.id in self._claims:
            self._set(info.id, info.owner, claimed_bytes(info), False)

    async def release(self, upload_id: str) -> None:
        self._set(upload_id, None, 0, False)

    def _set(self, upload_id: str, owner: str | None, nbytes: int, unfinished: bool) -> None:
        old = self._claims.pop(upload_id, None)
        if old is not None:
            usage = self._usage.setdefault(old[0], Usage())
            usage.bytes -= old[1]
            usage.unfinished -= int(old[2])
        if owner is not None:
            self._claims[upload_id] = (owner, nbytes, unfinished)
            usage = self._usage.setdefault(owner, Usage())
            usage.bytes += nbytes
            usage.unfinished += int(unfinished)


class QuotaListener:
    """Keeps the ledger current from the upload lifecycle; a release the state store cannot take
    now (PostgreSQL down) is retried by the reconciler."""

    def __init__(self, ledger: QuotaLedger, reconciler: Reconciler | None = None) -> None:
        self.ledger = ledger
        self.reconciler = reconciler or Reconciler()

    async def on_created(self, info: UploadInfo) -> None:
        pass  # reserved at creation, before the upload existed

    def on_progress(self, info: UploadInfo) -> None:
        pass

    async def on_finished(self, info: UploadInfo) -> None:
        pass  # settled by TusService.finish (which also sees partial uploads), with retries

    async def on_terminated(self, info: UploadInfo) -> None:
        upload_id = info.id
        await self.reconciler.attempt(f"quota.release:{upload_id}", lambda: self.ledger.release(upload_id))
