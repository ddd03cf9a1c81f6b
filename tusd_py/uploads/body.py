"""Reading a PATCH/POST body as a bounded stream of chunks.

The stream ends early with one value, :class:`~tusd_py.model.upload.BodyEnded`, whose reason
says why: the client went away, it stalled longer than the idle timeout, another request took the
upload's lock over, or it sent more than the upload can hold. The storage backend keeps whatever
arrived before that (see ``DataStore.write``), which is what lets a client on a flaky network
resume exactly where the server stopped; the service alone turns the reason into a status.

Hot path. Observers (a request's Upload-Checksum) run in a worker thread on
batches of chunks, one batch at a time and in order, so hashing overlaps with reading the socket
and writing the disk instead of stalling the event loop (hashlib releases the GIL on large
buffers). The idle timeout is one watchdog timer per stream, not a timer per chunk.

Ending a stream early (takeover, idle timeout) cancels the read waiting for data rather than
storing an exception in aiohttp's StreamReader: a poisoned reader made aiohttp's lingering close,
which reads and discards the rest of an unfinished body after the response, fail with a logged
traceback and reset the connection, so a superseded client saw a broken pipe instead of its 423.
Left clean, the reader lets aiohttp discard what the client still sends (for its lingering time,
10 s) and then close; a client still sending after that sees a reset, having been answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import StreamReader

from tusd_py.model.upload import BodyEnded, EndReason

OBSERVE_BATCH = 512 * 1024
# After a takeover request, how long a connection may stay quiet before its stream is ended. Long
# enough for a loaded server to drain data already in the socket buffer; short next to the time a
# client takes to notice a dead connection and reconnect.
HANDOVER_GRACE = 0.25


def _handed_over() -> BodyEnded:
    return BodyEnded(EndReason.HANDED_OVER, "another request took over this upload")


class BodyStream:
    """Async iterator over a request body, counting and observing every byte it yields.

    Observers have seen every yielded byte once the iteration has ended, normally or by an
    exception raised from the body; a consumer that abandons the iteration early leaves them
    behind (callers compare what observers saw with what was stored, see DigestCache.commit).
    """

    def __init__(
        self,
        content: StreamReader,
        *,
        max_bytes: int,
        idle_timeout: float,
        observers: list[Callable[[bytes], None]] | None = None,
    ) -> None:
        self._content = content
        self._max_bytes = max_bytes
        self._idle_timeout = idle_timeout
        self._observers = observers or []
        self._unobserved: list[bytes] = []
        self._unobserved_size = 0
        self._observing: asyncio.Future[None] | None = None
        self._waiting = False
        self._deadline: asyncio.Timeout | None = None  # of the read waiting for data, if any
        self._interruption: BodyEnded | None = None
        self._handed_over = False
        self.received = 0

    def hand_over(self) -> None:
        """Called by the locker: end this stream once it stalls, keeping every byte that arrived.

        A reader waiting for data (nothing is buffered, the connection is quiet) is ended at once.
        A reader still receiving keeps going while data keeps coming within HANDOVER_GRACE, so
        bytes already on their way (in the socket buffer of a client that just vanished) are kept;
        a client that is really still sending keeps its request, and the newcomer gets 423.
        """
        self._handed_over = True
        if self._waiting:
            loop = asyncio.get_running_loop()
            loop.call_later(HANDOVER_GRACE, self._end_if_quiet, self.received)

    def _end_if_quiet(self, received_then: int) -> None:
        # Still blocked in the same read with nothing new: the connection is quiet, end it. (If
        # data came meanwhile, the read loop is in grace mode and ends itself once data stops.)
        if self.received == received_then:
            self._interrupt(_handed_over())

    def _interrupt(self, reason: BodyEnded) -> bool:
        """End the read waiting for data with ``reason``; False if no read is waiting."""
        if not self._waiting or self._deadline is None or self._interruption is not None:
            return False
        self._interruption = reason
        self._deadline.reschedule(asyncio.get_running_loop().time())  # cancels that read now
        return True

    async def _wait_for_data(self) -> bytes:
        """``readany`` that :meth:`_interrupt` can end, leaving the StreamReader usable."""
        self._interruption = None
        try:
            async with asyncio.timeout(None) as self._deadline:  # no timer until rescheduled
                self._waiting = True
                try:
                    return await self._content.readany()
                finally:
                    self._waiting = False
                    self._deadline = None
        except TimeoutError:
            if self._interruption is None:
                raise
            raise self._interruption from None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        watchdog = _IdleWatchdog(loop, self._interrupt, self._idle_timeout)
        try:
            async for chunk in self._read(watchdog):
                yield chunk
        finally:
            watchdog.cancel()
            await self._observe_rest()

    async def _read(self, watchdog: _IdleWatchdog) -> AsyncIterator[bytes]:
        content = self._content
        while True:
            ended: BodyEnded | None = None
            try:
                if self._handed_over:
                    try:
                        async with asyncio.timeout(HANDOVER_GRACE):
                            chunk = await content.readany()
                    except TimeoutError:
                        raise _handed_over() from None
                else:
                    chunk = await self._wait_for_data()
            except BodyEnded as exc:
                # Bytes that arrived just as the read was ended are still buffered: keep them.
                ended = exc
                chunk = _salvage(content) if self._interruption is exc else b""
            except Exception as exc:  # connection lost, aiohttp's ClientPayloadError / ContentLengthError...
                ended = BodyEnded(EndReason.CLIENT_GONE, f"client connection lost: {exc}")
                ended.__cause__ = exc
                chunk = _salvage(content)
            if not chunk:
                if ended is not None:
                    raise ended
                return
            watchdog.activity()
            room = self._max_bytes - self.received
            if len(chunk) > room:
                if room > 0:
                    await self._deliver(chunk[:room])
                    yield chunk[:room]
                raise BodyEnded(EndReason.TOO_LONG, f"the body has more than the {self._max_bytes} bytes it may add")
            await self._deliver(chunk)
            yield chunk
            if ended is not None:
                raise ended

    async def _deliver(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if not self._observers:
            return
        self._unobserved.append(chunk)
        self._unobserved_size += len(chunk)
        if self._unobserved_size >= OBSERVE_BATCH:
            if self._observing is not None:
                await self._observing  # back-pressure: at most one batch being hashed per stream
            batch, self._unobserved, self._unobserved_size = self._unobserved, [], 0
            self._observing = asyncio.ensure_future(asyncio.to_thread(self._observe, batch))

    async def _observe_rest(self) -> None:
        if self._observing is not None:
            await self._observing
            self._observing = None
        if self._unobserved:
            batch, self._unobserved, self._unobserved_size = self._unobserved, [], 0
            self._observe(batch)

    def _observe(self, batch: list[bytes]) -> None:
        for chunk in batch:
            for observe in self._observers:
                observe(chunk)


def _salvage(content: StreamReader) -> bytes:
    """Bytes aiohttp had already received when the connection broke.

    StreamReader raises a stored exception before returning what it buffered, which would drop
    bytes that reached the server; those must be kept (and HEAD must count them). There is no
    public call that reads past the exception, hence the private one, guarded.
    """
    try:
        data: bytes = content._read_nowait(-1)
    except Exception:
        return b""
    return data


class _IdleWatchdog:
    """Ends the body (EndReason.IDLE) if no chunk arrives for ``timeout`` seconds while the
    stream waits for the client (a slow consumer is not an idle client)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interrupt: Callable[[BodyEnded], bool], timeout: float) -> None:
        self._loop = loop
        self._interrupt = interrupt
        self._timeout = timeout
        self._last = loop.time()
        self._handle = loop.call_later(timeout, self._check)

    def activity(self) -> None:
        self._last = self._loop.time()

    def _check(self) -> None:
        idle = self._loop.time() - self._last
        if idle >= self._timeout and self._interrupt(
            BodyEnded(EndReason.IDLE, f"no data received for {self._timeout:g} s")
        ):
            return
        self._handle = self._loop.call_later(max(self._timeout - idle, 0.05 * self._timeout), self._check)

    def cancel(self) -> None:
        self._handle.cancel()
