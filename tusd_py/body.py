"""Reading a PATCH/POST body as a bounded stream of chunks.

The stream ends early, with an exception, when the client goes away, when it stalls longer than
the idle timeout, when another request takes the upload's lock over, or when it sends more than
the upload can hold. The storage backend keeps whatever arrived before that (see
``DataStore.write``), which is what lets a client on a flaky network resume exactly where the
server stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import StreamReader

from tusd_py.errors import TusError


class BodyInterrupted(Exception):
    """The body ended before the client finished sending it."""


class LockHandedOver(BodyInterrupted):
    """A newer request for the same upload asked for the lock; this one stops here."""


class BodyStream:
    """Async iterator over a request body, counting and observing every byte it yields."""

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
        self.received = 0

    def hand_over(self) -> None:
        """Called by the locker: end this stream at the next chunk boundary, keeping its bytes."""
        self._content.set_exception(LockHandedOver("another request took over this upload"))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        content = self._content
        while True:
            try:
                async with asyncio.timeout(self._idle_timeout):
                    chunk = await content.readany()
            except TimeoutError:
                raise BodyInterrupted(f"no data received for {self._idle_timeout:g} s") from None
            except LockHandedOver:
                raise
            except (ConnectionError, OSError, ValueError) as exc:
                raise BodyInterrupted(f"client connection lost: {exc}") from exc
            except Exception as exc:  # aiohttp's ClientPayloadError / ContentLengthError and friends
                raise BodyInterrupted(f"request body ended early: {exc}") from exc
            if not chunk:
                return
            room = self._max_bytes - self.received
            if len(chunk) > room:
                if room > 0:
                    self._deliver(chunk[:room])
                    yield chunk[:room]
                raise TusError(413, "request body exceeds what this upload may still hold (its length or a quota)")
            self._deliver(chunk)
            yield chunk

    def _deliver(self, chunk: bytes) -> None:
        self.received += len(chunk)
        for observe in self._observers:
            observe(chunk)
