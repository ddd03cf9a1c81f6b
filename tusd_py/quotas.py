"""Per-user quotas: stored bytes and unfinished uploads.

Bytes count what a user has claimed, not only what has arrived: finished uploads by their size,
unfinished ones by their declared Upload-Length (by their offset while the length is deferred).
Otherwise a client could open many large uploads at once and overrun the limit later.

The ledger lives in memory, rebuilt from the storage backend at start-up and kept current by the
upload lifecycle. Checking and reserving happen in one synchronous step, so two concurrent
creations by one user cannot both slip under the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storage_backends.base import DataStore, UploadInfo
from tusd_py import metrics
from tusd_py.errors import TusError
from tusd_py.protocol import upload_state

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    max_bytes: int | None = 500 * MIB  # None: unlimited
    max_unfinished: int | None = 50


@dataclass(slots=True)
class Usage:
    bytes: int = 0
    unfinished: int = 0


def claimed_bytes(info: UploadInfo) -> int:
    return info.length if info.length is not None else info.offset


class QuotaExceeded(TusError):
    """413 from a user's quota; ``limit`` names which one ("bytes" or "unfinished")."""

    def __init__(self, limit: str, reason: str) -> None:
        super().__init__(413, reason)
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


@dataclass
class QuotaLedger:
    limits: QuotaLimits
    _claims: dict[str, tuple[str, int, bool]] = field(default_factory=dict)  # upload -> (owner, bytes, unfinished)
    _usage: dict[str, Usage] = field(default_factory=dict)

    def usage(self, user: str) -> Usage:
        current = self._usage.get(user, Usage())
        return Usage(current.bytes, current.unfinished)

    async def rebuild(self, store: DataStore) -> None:
        self._claims.clear()
        self._usage.clear()
        async for info in store.list_uploads():
            if info.owner is not None:
                self._set(info.id, info.owner, claimed_bytes(info), upload_state.counts_as_unfinished(info))

    def reserve(self, info: UploadInfo) -> None:
        """Check and record a new upload in one step (no await in between)."""
        if info.owner is None:
            return
        self._check(info.owner, add_bytes=claimed_bytes(info), add_unfinished=1)
        self._set(info.id, info.owner, claimed_bytes(info), True)

    def grow(self, info: UploadInfo, new_bytes: int) -> None:
        """A deferred upload claims more (its length became known, or bytes arrived)."""
        if info.owner is None or info.id not in self._claims:
            return
        owner, current, unfinished = self._claims[info.id]
        if new_bytes > current:
            self._check(owner, add_bytes=new_bytes - current, add_unfinished=0)
            self._set(info.id, owner, new_bytes, unfinished)

    def _check(self, owner: str, *, add_bytes: int, add_unfinished: int) -> None:
        try:
            check_quota(self.usage(owner), self.limits, add_bytes=add_bytes, add_unfinished=add_unfinished)
        except QuotaExceeded as exc:
            metrics.QUOTA_REFUSALS.labels(exc.limit).inc()
            raise

    def room(self, user: str | None) -> int | None:
        """Bytes this user may still claim (None: unlimited)."""
        if user is None or self.limits.max_bytes is None:
            return None
        return max(0, self.limits.max_bytes - self.usage(user).bytes)

    def finished(self, info: UploadInfo) -> None:
        if info.owner is not None and info.id in self._claims:
            self._set(info.id, info.owner, claimed_bytes(info), False)

    def release(self, upload_id: str) -> None:
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
    """Keeps the ledger current from the upload lifecycle."""

    def __init__(self, ledger: QuotaLedger) -> None:
        self.ledger = ledger

    async def on_created(self, info: UploadInfo) -> None:
        pass  # reserved at creation, before the upload existed

    def on_progress(self, info: UploadInfo) -> None:
        pass

    async def on_finished(self, info: UploadInfo) -> None:
        self.ledger.finished(info)

    async def on_terminated(self, info: UploadInfo) -> None:
        self.ledger.release(info.id)
