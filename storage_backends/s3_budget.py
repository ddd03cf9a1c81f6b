"""One memory budget per S3 store for the part buffers of every concurrent write.

Each :class:`storage_backends.s3.S3Store` owns one :class:`ByteBudget` of
``part_size * part_concurrency`` bytes. A part's bytes are reserved just before they are
assembled in memory and released when its upload ends, so the part buffers of *all* PATCHes
together stay within that budget: sixteen concurrent uploads hold no more than one.

A writer waits for budget only while it holds none (its earlier parts are in upload tasks that
release theirs on their own, whatever other writers do), so waiting can never deadlock; waiters
are served first come, first served, so a large reservation is not starved by small ones.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ByteBudget:
    """A counting semaphore in bytes, with the current and peak reservation for tests and logs.

    A reservation larger than the whole budget (a part size raised for a huge upload) is granted
    when nothing else is reserved, and nothing else is granted while it is held, so the peak is
    at most ``max(capacity, largest single reservation)``."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("the budget must be positive")
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0
        self.waits = 0  # reservations that had to wait (back-pressure happened)
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, size: int) -> bool:
        return self.in_use == 0 or self.in_use + size <= self.capacity

    def _take(self, size: int) -> None:
        self.in_use += size
        self.peak = max(self.peak, self.in_use)

    async def acquire(self, size: int) -> None:
        """Reserve ``size`` bytes, waiting (in arrival order) until they fit."""
        if size < 0:
            raise ValueError("cannot reserve a negative size")
        if not self._waiters and self._fits(size):
            self._take(size)
            return
        self.waits += 1
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted, but our caller is gone: hand it on
            else:
                if entry in self._waiters:  # _wake may have dropped it already
                    self._waiters.remove(entry)
                self._wake()  # we may have been the head that blocked smaller requests
            raise

    def release(self, size: int) -> None:
        if size > self.in_use:
            raise RuntimeError(f"releasing {size} bytes of a budget holding {self.in_use}")
        self.in_use -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            size, waiter = self._waiters[0]
            if waiter.done():  # cancelled; its task removes it, but it must not block the queue
                self._waiters.popleft()
                continue
            if not self._fits(size):
                return
            self._waiters.popleft()
            self._take(size)
            waiter.set_result(None)

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        await self.acquire(size)
        try:
            yield
        finally:
            self.release(size)
