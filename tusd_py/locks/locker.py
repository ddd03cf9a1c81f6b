"""Per-upload locks: two requests that write the same upload never interleave.

The newest request wins, as in tusd: a client on a flaky network often resumes while the server
still holds its previous, half-dead connection. Waiting for that connection to time out would
stall the resume for minutes, so a new request asks the current holder to let go
(``on_release_request``); the holder ends its body stream cleanly, keeping every byte it
wrote, and releases. If the holder does not let go within the timeout, the newcomer gets 423.

The in-process locker serves one server process; :mod:`tusd_py.locks.redis_locker` implements the
same semantics for several instances behind one load balancer (``--redis-url``). A lock yields a
:class:`~tusd_py.model.fencing.Fence` that the write under it hands to the storage backend: a
shared lock is a lease that a paused holder can lose, and its fence then refuses the commit.
The in-process lock cannot be lost; its fence is a no-op.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

from tusd_py.model.error_codes import ErrorCode
from tusd_py.model.errors import TusError
from tusd_py.model.fencing import NO_FENCE, Fence
from tusd_py.telemetry import metrics

# Lock names of background jobs that one instance at a time should run: the periodic expiration
# sweep and cleanup of failed recordings. Not upload ids (UPLOAD_ID allows no "~"), so they never
# meet a client's lock; taken with try_lock on the shared locker, so with N processes or instances
# on Redis one of them sweeps per round and the others skip it (the work is idempotent anyway: a
# second deleter finds the upload gone).
SWEEP_LOCK = "~expiration-sweep"
CLEANUP_LOCK = "~failed-cleanup"


class UploadLocked(TusError):
    def __init__(self) -> None:
        super().__init__(423, "upload is locked by another request; retry shortly")


class LockUnavailable(TusError):
    """The shared lock service cannot be reached: nothing is written without a lock (503)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            503,
            f"upload locks are unavailable ({detail}); retry shortly",
            {"Retry-After": "2"},
            code=ErrorCode.LOCK_SERVICE_UNAVAILABLE,
        )


class Locker(abc.ABC):
    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect (a shared locker); called before the server takes requests."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and background tasks."""

    async def probe(self) -> None:  # noqa: B027 - optional hook
        """Raise if locks cannot be taken right now (``/readyz``)."""

    @abc.abstractmethod
    def lock(
        self, upload_id: str, on_release_request: Callable[[], None] | None = None
    ) -> AbstractAsyncContextManager[Fence]:
        """An async context manager holding the upload's lock, yielding the fence that writes
        under it pass to the store; raises :class:`UploadLocked` (or :class:`LockUnavailable`).

        ``on_release_request`` is called (once per holder) when a newer request asks for the lock,
        or when a shared lock is lost: the holder then ends its body stream and lets go."""

    @abc.abstractmethod
    def try_lock(self, upload_id: str) -> AbstractAsyncContextManager[Fence]:
        """Take the lock only if it is free right now; never asks a holder to let go.

        For background work (expiration sweeps) that must not interrupt a client's upload.
        """

    @abc.abstractmethod
    def is_locked(self, upload_id: str) -> bool:
        """Whether this locker (this process) holds the upload's lock now."""


@dataclass(eq=False)
class _Holder:
    released: asyncio.Event = field(default_factory=asyncio.Event)
    on_release_request: Callable[[], None] | None = None


class InProcessLocker(Locker):
    def __init__(self, timeout: float = 3.0) -> None:
        self._timeout = timeout
        self._holders: dict[str, _Holder] = {}

    @asynccontextmanager
    async def lock(self, upload_id: str, on_release_request: Callable[[], None] | None = None) -> AsyncIterator[Fence]:
        holder = await self._acquire(upload_id, on_release_request)
        try:
            yield NO_FENCE
        finally:
            self._release(upload_id, holder)

    @asynccontextmanager
    async def try_lock(self, upload_id: str) -> AsyncIterator[Fence]:
        if upload_id in self._holders:
            raise UploadLocked()
        holder = _Holder()
        self._holders[upload_id] = holder
        try:
            yield NO_FENCE
        finally:
            self._release(upload_id, holder)

    def _release(self, upload_id: str, holder: _Holder) -> None:
        if self._holders.get(upload_id) is holder:
            del self._holders[upload_id]
        holder.released.set()

    async def _acquire(self, upload_id: str, on_release_request: Callable[[], None] | None) -> _Holder:
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + self._timeout
        asked: set[int] = set()
        contended = False
        while (current := self._holders.get(upload_id)) is not None:
            if current.on_release_request is not None and id(current) not in asked:
                asked.add(id(current))
                metrics.LOCK_TAKEOVERS.inc()
                current.on_release_request()
            contended = True
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(current.released.wait(), remaining)
            except TimeoutError:
                metrics.LOCK_TIMEOUTS.inc()
                raise UploadLocked() from None
        if contended:  # an uncontended lock costs no metric call
            metrics.LOCK_WAIT.observe(loop.time() - began)
        holder = _Holder(on_release_request=on_release_request)
        self._holders[upload_id] = holder
        return holder

    def is_locked(self, upload_id: str) -> bool:
        return upload_id in self._holders
