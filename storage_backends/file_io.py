"""Blocking file I/O of the filesystem backend: the appender (on the event loop while the disk keeps
up, else pipelined in a thread) and the in-kernel copies.

Every call here that writes is waited for even when the calling task is cancelled: closing a
descriptor (or releasing the upload's lock) under a write still running in a thread would corrupt
the upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from storage_backends.file_fence import FileFence
from tusd_py.model.storage_errors import StorageError

# Bytes gathered from the network before one vectored write: large enough that syscalls (and, on a
# slow disk, thread hand-offs) are rare, small enough that memory stays flat (at most two batches
# per PATCH: one filling, one being written in a thread; 16 concurrent uploads cost <= 16 MiB).
WRITE_BATCH = 512 * 1024
READ_BLOCK = 256 * 1024
# A write that takes longer than this blocked on the disk, not on a page-cache copy (a 512 KiB batch
# copies in ~0.1 ms): dirty-page throttling, a slow or network mount.
SLOW_WRITE = 0.005
# After a slow write, batches go to a thread for this long, then inline writing is tried again.
THREAD_AFTER_SLOW_WRITE = 2.0
_IOV_MAX = 1024


async def finish_in_thread(func: Callable[..., None], *args: object) -> None:
    """Run blocking I/O in a thread and wait for it even if this task is cancelled."""
    future = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        await future
        raise


class WritePlacement:
    """Where a store's batches are written: on the event loop while the disk keeps up, in a thread
    for a while after a write that blocked.

    Copying a batch into the page cache takes microseconds, less than handing it to a thread and
    back (measured, bench/RESULTS.md: large uploads went from 0.62-0.74x to 0.87-1.01x of the
    simplest aiohttp app). A write that blocks on the disk would stall every request of the
    process for as long, so one slow write moves the following ones off the loop.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._threaded_until = -float("inf")

    def inline(self) -> bool:
        return self._clock() >= self._threaded_until

    def took(self, seconds: float) -> None:
        """Report how long an inline write took."""
        if seconds > SLOW_WRITE:
            self._threaded_until = self._clock() + THREAD_AFTER_SLOW_WRITE


class PipelinedWriter:
    """Writes batches one at a time and in order: on the event loop while ``placement`` allows it,
    otherwise in a worker thread while the caller reads the next batch from the network (socket
    reads and disk writes overlap, and memory stays at two batches per request)."""

    def __init__(self, fd: int, placement: WritePlacement, fence: FileFence | None = None, position: int = 0) -> None:
        """``fence``: write each batch under it (see file_fence.py), ``position`` being where the
        file ends before the first batch."""
        self._fd = fd
        self._placement = placement
        self._fence = fence
        self._position = position
        self._pending: asyncio.Future[None] | None = None
        self.failed = False  # a write raised: the file ends somewhere inside that batch

    async def submit(self, batch: list[bytes], size: int) -> None:
        await self.drain()
        fence = self._fence
        at, self._position = self._position, self._position + size
        if self._placement.inline():
            started = time.perf_counter()
            try:
                if fence is None:
                    _writev_all(self._fd, batch)
                    done = True
                else:  # not done: another holder has the fence's flock; waited for in a thread below
                    done = _fenced_writev_now(fence, self._fd, batch, at)
            except Exception:
                self.failed = True
                raise
            if done:
                self._placement.took(time.perf_counter() - started)
                return
        if fence is None:
            self._pending = asyncio.ensure_future(asyncio.to_thread(_writev_all, self._fd, batch))
        else:
            self._pending = asyncio.ensure_future(asyncio.to_thread(_fenced_writev, fence, self._fd, batch, at))

    async def drain(self) -> None:
        """Wait for the write in flight; raise its error (waits even if this task is cancelled)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            try:
                await asyncio.shield(pending)
            except asyncio.CancelledError:
                await pending
                raise
        except Exception:
            self.failed = True
            raise

    async def drain_quietly(self) -> None:
        with contextlib.suppress(Exception):  # the caller is already raising something more relevant
            await self.drain()


def _writev_all(fd: int, buffers: list[bytes]) -> None:
    """os.writev may write less than asked (and takes at most IOV_MAX buffers): loop until done."""
    views = [memoryview(b) for b in buffers if b]
    while views:
        count = os.writev(fd, views[:_IOV_MAX])
        while count and views:
            head = views[0]
            if count >= len(head):
                count -= len(head)
                views.pop(0)
            else:
                views[0] = head[count:]
                count = 0


def _fenced_writev(fence: FileFence, fd: int, buffers: list[bytes], at: int) -> None:
    with fence.held(fd, at):
        _writev_all(fd, buffers)


def _fenced_writev_now(fence: FileFence, fd: int, buffers: list[bytes], at: int) -> bool:
    """:func:`_fenced_writev` unless another holder has the fence's flock: then False, nothing done."""
    if not fence.acquire(fd, at, wait=False):
        return False
    try:
        _writev_all(fd, buffers)
    finally:
        fence.release()
    return True


def _copy_range(src: int, dst: int, length: int, write_at: int, shortfall: str) -> int:
    """Copy ``length`` bytes from the start of ``src`` to ``write_at`` in ``dst`` inside the kernel
    (copy_file_range: no copy through Python memory); return where the next write goes.
    Explicit offsets, because copy_file_range refuses O_APPEND targets."""
    read_at = 0
    while read_at < length:
        copied = os.copy_file_range(src, dst, length - read_at, read_at, write_at)
        if copied == 0:
            raise StorageError(shortfall)
        read_at += copied
        write_at += copied
    return write_at


def append_file(source: Path, target: Path, fsync: bool, fence: FileFence | None = None, at: int = 0) -> None:
    """Append ``source`` to ``target`` (under ``fence``, expecting ``target`` to end at ``at``)."""
    with open(source, "rb") as src, open(target, "r+b") as dst:
        length = os.fstat(src.fileno()).st_size
        guard = fence.held(dst.fileno(), at) if fence is not None else contextlib.nullcontext()
        with guard:
            end = os.fstat(dst.fileno()).st_size
            shortfall = f"could not append {source.name}: source ended early"
            _copy_range(src.fileno(), dst.fileno(), length, end, shortfall)
        if fsync:
            os.fsync(dst.fileno())


def concatenate_files(target: Path, sources: list[tuple[Path, int]], fsync: bool) -> None:
    """Rebuild ``target`` as the concatenation of ``sources`` (path, length).

    Truncating first makes a retry after a crash produce the same bytes, never a doubled prefix.
    """
    with open(target, "r+b") as dst:
        dst.truncate(0)
        write_at = 0
        for source, length in sources:
            with open(source, "rb") as src:
                shortfall = f"partial upload {source.name} is shorter than its length"
                write_at = _copy_range(src.fileno(), dst.fileno(), length, write_at, shortfall)
        if fsync:
            os.fsync(dst.fileno())


def unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)
