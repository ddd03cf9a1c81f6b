"""Upload locks across the worker processes of one host: :class:`HostLocker`, the client side.

The semantics are the in-process locker's, kept by the supervisor's host service
(tusd_py/host/service.py; tests/locks/test_locking.py asserts the same cases on every locker). A lock
is one round trip; the release needs no answer. A hold yields a :class:`HostFence` with a token
above 0, so the filesystem backend writes under its ``<id>.fence`` file and every commit point
asks :meth:`HostFence.check`: answered locally while this worker's liveness lease is confirmed
(the normal case, no round trip), from the service otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog

from tusd_py.host.client import COMMAND_TIMEOUT, HostClient, HostUnavailable
from tusd_py.locks.locker import Locker, LockUnavailable, UploadLocked
from tusd_py.model.fencing import Fence, FenceLost
from tusd_py.telemetry import metrics

log = structlog.get_logger(__name__)


@dataclass(eq=False)
class HostFence:
    client: HostClient
    upload_id: str
    token: int
    on_release_request: Callable[[], None] | None = None
    asked: bool = False
    lost: bool = False

    def tell(self, lost: bool) -> None:
        """The service asked this hold to let go (``lost`` False), or the connection is gone."""
        if lost and not self.lost:
            self.lost = True
            log.warning("upload lock lost", upload_id=self.upload_id, token=self.token)
        if not self.asked:
            self.asked = True
            if self.on_release_request is not None:
                self.on_release_request()

    async def check(self) -> None:
        if self.lost:
            raise FenceLost("this request lost the upload's lock (its worker was cut off); nothing more is kept")
        # The service keeps this worker's locks until ``confirmed_until``; half a lease of room
        # is plenty for the commit that follows.
        if time.monotonic() + self.client.lease / 2 < self.client.confirmed_until:
            return
        try:
            answer = await self.client.request("C", self.token)
        except HostUnavailable as exc:
            raise FenceLost(f"the lock service cannot confirm this request's lock: {exc}", unreachable=True) from exc
        if answer[0] != "Y":
            self.tell(True)
            raise FenceLost("another request holds the upload's lock now; nothing more is kept")


class HostLocker(Locker):
    def __init__(self, client: HostClient, timeout: float = 3.0) -> None:
        self.client = client
        self._timeout = timeout
        self._held: dict[str, HostFence] = {}

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()

    async def probe(self) -> None:
        try:
            await self.client.request("P")
        except HostUnavailable as exc:
            raise LockUnavailable(str(exc)) from exc

    @asynccontextmanager
    async def lock(self, upload_id: str, on_release_request: Callable[[], None] | None = None) -> AsyncIterator[Fence]:
        fence = await self._acquire(upload_id, "w", on_release_request)
        try:
            yield fence
        finally:
            self._release(fence)

    @asynccontextmanager
    async def try_lock(self, upload_id: str) -> AsyncIterator[Fence]:
        fence = await self._acquire(upload_id, "t", None)
        try:
            yield fence
        finally:
            self._release(fence)

    def is_locked(self, upload_id: str) -> bool:
        return upload_id in self._held

    async def _acquire(self, upload_id: str, mode: str, on_release_request: Callable[[], None] | None) -> HostFence:
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            answer = await self.client.request(
                "L", upload_id, int(self._timeout * 1000), mode, within=self._timeout + COMMAND_TIMEOUT
            )
        except HostUnavailable as exc:
            raise LockUnavailable(str(exc)) from exc
        if answer[0] == "B":
            if answer[2]:
                metrics.LOCK_TIMEOUTS.inc()
            raise UploadLocked()
        _, _, token, contended = answer
        if contended:  # an uncontended lock costs no metric call
            metrics.LOCK_TAKEOVERS.inc()
            metrics.LOCK_WAIT.observe(loop.time() - began)
        fence = HostFence(self.client, upload_id, token, on_release_request)
        self.client.holds[token] = fence.tell
        self._held[upload_id] = fence
        return fence

    def _release(self, fence: HostFence) -> None:
        if self._held.get(fence.upload_id) is fence:
            del self._held[fence.upload_id]
        if self.client.holds.pop(fence.token, None) is not None:
            self.client.send(["U", fence.token])
