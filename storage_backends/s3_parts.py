"""Cutting one PATCH body into multipart parts and uploading them concurrently, in bounded memory.

A :class:`PartWriter` fills a buffer until ``tail + buffer`` is one part, then hands the part to an
upload task and starts a new buffer. At most ``concurrency`` uploads are in flight; the next full
part waits for a free slot, which pauses reading the request body (back-pressure), so memory stays
under ``part_size * (concurrency + 1)`` whatever the upload size.

The writer records nothing: it reports which parts landed, in order, and the caller commits them
to the info object (the commit point). Parts that landed after a failed one are orphans, which a
later write overwrites (same part numbers) and CompleteMultipartUpload ignores (not listed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from storage_backends.base import StorageError
from storage_backends.s3_ledger import Part, check_part_number, split_chunk

log = structlog.get_logger(__name__)

UploadPart = Callable[[int, bytes | bytearray], Awaitable[Part]]
FetchTail = Callable[[], Awaitable[bytes]]


class PartWriter:
    def __init__(
        self,
        *,
        part_size: int,
        first_number: int,
        tail_size: int,
        concurrency: int,
        upload_part: UploadPart,
        fetch_tail: FetchTail,
    ) -> None:
        self.part_size = part_size
        self._next_number = first_number
        self._tail_size = tail_size  # bytes already in S3 as tail segments, waiting for a part
        self._upload_part = upload_part
        self._fetch_tail = fetch_tail
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: list[asyncio.Task[Part]] = []
        self._buffer = bytearray()
        #: True once the existing tail went into the first new part (so the tail is superseded
        #: if, and only if, that part lands).
        self.tail_consumed = False
        self.received = 0

    @property
    def filled(self) -> int:
        """Bytes of the part being filled: the pending tail (if not consumed yet) plus the buffer."""
        return len(self._buffer) + (0 if self.tail_consumed else self._tail_size)

    @property
    def leftover(self) -> bytearray:
        """This write's bytes that do not fill a part (they become a tail segment)."""
        return self._buffer

    @property
    def leftover_size(self) -> int:
        return len(self._buffer)

    @property
    def tail_pending(self) -> bool:
        return self._tail_size > 0 and not self.tail_consumed

    async def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        view = memoryview(chunk)
        position = 0
        for piece in split_chunk(self.filled, len(chunk), self.part_size):
            self._buffer += view[position : position + piece]
            position += piece
            if self.filled == self.part_size:
                await self._emit()

    async def flush_last_part(self) -> None:
        """Upload whatever is pending (tail and buffer) as the upload's last, possibly short, part."""
        if self.filled > 0:
            await self._emit()

    async def _emit(self) -> None:
        self.raise_if_failed()
        number = self._next_number
        try:
            check_part_number(number)
        except ValueError as exc:  # a deferred-length upload outgrew max_upload_size's part size
            raise StorageError(str(exc)) from None
        body = self._buffer
        self._buffer = bytearray()
        if self.tail_pending:
            # Promotion: the tail's bytes go to S3 a second (and last) time, inside this part.
            merged = bytearray(await self._fetch_tail())
            merged += body
            body = merged
            self.tail_consumed = True
        self._next_number += 1
        await self._slots.acquire()
        self._tasks.append(asyncio.create_task(self._upload(number, body)))

    async def _upload(self, number: int, body: bytearray) -> Part:
        try:
            return await self._upload_part(number, body)
        finally:
            self._slots.release()

    def raise_if_failed(self) -> None:
        """Stop reading the body as soon as one part failed: its bytes cannot be recorded."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def settle(self) -> tuple[list[Part], BaseException | None]:
        """Wait for every upload; return the parts that landed in order up to the first failure
        (those are recordable) and that failure, if any."""
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        landed: list[Part] = []
        for result in results:
            if isinstance(result, BaseException):
                return landed, result
            landed.append(result)
        return landed, None

    async def abandon(self) -> None:
        """Cancel uploads in flight; whatever landed stays an unrecorded orphan part."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
