"""Cutting one PATCH body into multipart parts and uploading them concurrently, in bounded memory.

A :class:`PartWriter` spools the incoming bytes (:class:`Spool`: in memory up to
:data:`SPOOL_MEMORY`, then in an anonymous temporary file) until ``tail + spool`` is one part.
Then it reserves the part's bytes in the store-wide :class:`ByteBudget`, assembles the part in
memory (the tail's segments, if it carries them, then the spool), and hands it to an upload task
that releases the reservation when the upload ends. Waiting for budget pauses reading the request
body (back-pressure), and happens only while this writer holds no budget, so it cannot deadlock.

Memory: part buffers of all writers of a store <= the budget (``part_size * part_concurrency``),
plus at most :data:`SPOOL_MEMORY` bytes of spool per write in progress.

The writer records nothing: it reports which parts landed, in order, and the caller commits them
to the info object (the commit point). Parts that landed after a failed one are orphans, which a
later write overwrites (same part numbers) and CompleteMultipartUpload ignores (not listed).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO

import structlog

from storage_backends.base import NO_SPACE
from storage_backends.s3_budget import ByteBudget
from storage_backends.s3_ledger import MIB, Part, check_part_number, split_chunk
from storage_backends.s3_objects import Body, body_size, part_buffer
from tusd_py.model.storage_errors import StorageError, StorageFull

log = structlog.get_logger(__name__)

UploadPart = Callable[[int, Body], Awaitable[Part]]
#: Copies the pending tail's bytes into the given view (exactly its size).
FetchTail = Callable[[memoryview], Awaitable[None]]

#: Bytes of a part being filled that stay in memory (a phone's 1 MiB PATCH never touches disk);
#: beyond that the part being filled goes to a temporary file, outside the budget.
SPOOL_MEMORY = 1 * MIB


class Spool:
    """The bytes of the part being filled: in memory up to ``memory_limit``, then in an anonymous
    temporary file. File writes are plain ``write`` calls on the event loop: they land in the page
    cache in microseconds per chunk (the read of a whole part goes to a thread)."""

    def __init__(self, memory_limit: int = SPOOL_MEMORY) -> None:
        self._memory_limit = memory_limit
        self._memory = bytearray()
        self._file: BinaryIO | None = None
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        try:
            if self._file is None and len(self._memory) + len(data) <= self._memory_limit:
                self._memory += data
            else:
                if self._file is None:
                    self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
                    self._file.write(self._memory)
                    self._memory = bytearray()
                self._file.write(data)
        except OSError as exc:
            error = StorageFull if exc.errno in NO_SPACE else StorageError
            raise error(f"could not spool upload bytes to a temporary file: {exc}") from exc
        self.size += len(data)

    async def read_into(self, target: memoryview) -> None:
        """Copy every spooled byte into ``target`` (exactly :attr:`size` bytes)."""
        if len(target) != self.size:
            raise ValueError(f"target holds {len(target)} bytes, the spool {self.size}")
        if self._file is None:
            target[:] = self._memory
            return
        try:
            await asyncio.to_thread(_read_file_into, self._file, target)
        except OSError as exc:
            raise StorageError(f"could not read spooled upload bytes back: {exc}") from exc

    def close(self) -> None:
        self._memory = bytearray()
        if self._file is not None:
            self._file.close()
            self._file = None


def _read_file_into(file: BinaryIO, target: memoryview) -> None:
    file.flush()
    file.seek(0)
    position = 0
    while position < len(target):
        count = file.readinto(target[position:])  # type: ignore[attr-defined]
        if not count:
            raise OSError(f"temporary file ended after {position} of {len(target)} bytes")
        position += count


class PartWriter:
    def __init__(
        self,
        *,
        part_size: int,
        first_number: int,
        tail_size: int,
        budget: ByteBudget,
        upload_part: UploadPart,
        fetch_tail: FetchTail,
        spool_memory: int = SPOOL_MEMORY,
    ) -> None:
        self.part_size = part_size
        self._next_number = first_number
        self._tail_size = tail_size  # bytes already in S3 as tail segments, waiting for a part
        self._budget = budget
        self._upload_part = upload_part
        self._fetch_tail = fetch_tail
        self._tasks: list[asyncio.Task[Part]] = []
        self._spool_memory = spool_memory
        self._spool = Spool(spool_memory)
        #: True once the existing tail went into the first new part (so the tail is superseded
        #: if, and only if, that part lands).
        self.tail_consumed = False
        self.received = 0

    @property
    def filled(self) -> int:
        """Bytes of the part being filled: the pending tail (if not consumed yet) plus the spool."""
        return self._spool.size + (0 if self.tail_consumed else self._tail_size)

    @property
    def leftover_size(self) -> int:
        """This write's bytes that do not fill a part (they become a tail segment)."""
        return self._spool.size

    @contextlib.asynccontextmanager
    async def leftover(self) -> AsyncIterator[bytearray]:
        """The leftover bytes in memory, reserved in the budget while the caller uses them."""
        size = self._spool.size
        async with self._budget.hold(size):
            body = bytearray(size)
            await self._spool.read_into(memoryview(body))
            yield body

    @property
    def parts_emitted(self) -> int:
        return len(self._tasks)

    @property
    def tail_pending(self) -> bool:
        return self._tail_size > 0 and not self.tail_consumed

    async def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        view = memoryview(chunk)
        position = 0
        for piece in split_chunk(self.filled, len(chunk), self.part_size):
            self._spool.write(view[position : position + piece])
            position += piece
            if self.filled == self.part_size:
                await self._emit()

    async def flush_last_part(self) -> None:
        """Upload whatever is pending (tail and spool) as the upload's last, possibly short, part."""
        if self.filled > 0:
            await self._emit()

    async def _emit(self) -> None:
        self.raise_if_failed()
        number = self._next_number
        try:
            check_part_number(number)
        except ValueError as exc:  # a deferred-length upload outgrew max_upload_size's part size
            raise StorageError(str(exc)) from None
        spool, self._spool = self._spool, Spool(self._spool_memory)
        tail = self._tail_size if self.tail_pending else 0
        size = tail + spool.size
        try:
            await self._budget.acquire(size)
            try:
                body = part_buffer(size)
                with body.getbuffer() as view:
                    if tail:
                        # Promotion: the tail's bytes go to S3 a second (and last) time, inside this part.
                        await self._fetch_tail(view[:tail])
                    await spool.read_into(view[tail:])
            except BaseException:
                self._budget.release(size)
                raise
        finally:
            spool.close()
        if tail:
            self.tail_consumed = True
        self._next_number += 1
        self._tasks.append(asyncio.create_task(self._upload(number, body)))

    async def _upload(self, number: int, body: Body) -> Part:
        size = body_size(body)
        try:
            return await self._upload_part(number, body)
        finally:
            del body
            self._budget.release(size)

    def raise_if_failed(self) -> None:
        """Stop reading the body as soon as one part failed: its bytes cannot be recorded."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def close(self) -> None:
        """Drop the spool (its temporary file) of the part being filled."""
        self._spool.close()

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
