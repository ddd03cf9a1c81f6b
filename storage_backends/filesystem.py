"""Filesystem backend: one data file and one info file (msgspec JSON) per upload.

Durability model: the upload's offset *is* the data file's size. Bytes are appended with plain
``write`` calls, which land in the page cache the moment they return, so a ``kill -9`` of the
server can never leave an offset that exceeds the bytes on disk, and nothing needs rewriting per
PATCH. (Surviving a power cut as well would take an fsync per PATCH; that trade-off is the
operator's, see ``fsync``.)

All-or-nothing writes (checksum requests) stream into a staging file ``<id>.pending`` and are
appended to the data file with ``copy_file_range`` only once verified: unverified bytes never
touch the data file, so a crash mid-request leaves at most a stale staging file, which the next
write replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path

import aiofiles
import aiofiles.os
import msgspec

from storage_backends.base import (
    CAP_CONCATENATION,
    CAP_DEFER_LENGTH,
    CAP_EXPIRATION,
    CAP_TERMINATION,
    DataStore,
    StorageError,
    UploadInfo,
    UploadNotFound,
    VerificationFailed,
)

_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_INFO_SUFFIX = ".info"
_PENDING_SUFFIX = ".pending"
# Bytes gathered from the network before one vectored write: large enough that thread hand-offs
# are rare, small enough that memory stays flat (two batches per PATCH: one filling, one being
# written; 16 concurrent uploads cost ~16 MiB).
WRITE_BATCH = 512 * 1024
READ_BLOCK = 256 * 1024
_IOV_MAX = 1024

_PID = os.getpid()
_TEMP_NAMES = itertools.count()

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(UploadInfo)


class FileStore(DataStore):
    capabilities = frozenset({CAP_TERMINATION, CAP_DEFER_LENGTH, CAP_CONCATENATION, CAP_EXPIRATION})

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.directory = Path(directory)
        self.fsync = fsync

    async def start(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".probe-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"storage directory {str(self.directory)!r} is not writable: {exc}") from exc

    # -- paths ---------------------------------------------------------------------------------
    def _data_path(self, upload_id: str) -> Path:
        # The core validates ids first; this second check keeps the backend safe on its own.
        if not _ID.fullmatch(upload_id):
            raise UploadNotFound(upload_id)
        return self.directory / upload_id

    def _info_path(self, upload_id: str) -> Path:
        return self._data_path(upload_id).with_name(upload_id + _INFO_SUFFIX)

    # -- info ----------------------------------------------------------------------------------
    # Each info access is one thread hand-off running plain blocking calls, rather than one
    # aiofiles hand-off per open/read/close/stat: bench/ counted 28 hand-offs per small upload.
    async def create(self, info: UploadInfo) -> None:
        await asyncio.to_thread(self._create_sync, info)

    def _create_sync(self, info: UploadInfo) -> None:
        data_path = self._data_path(info.id)
        try:
            # O_EXCL: an id collision (or a hook choosing an existing id) must never share a file.
            fd = os.open(data_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:
            raise StorageError(f"upload {info.id} already exists") from None
        os.close(fd)
        self._write_info_sync(info)

    async def update_info(self, info: UploadInfo) -> None:
        await asyncio.to_thread(self._write_info_sync, info)

    def _write_info_sync(self, info: UploadInfo) -> None:
        final = self._info_path(info.id)
        # Unique within this process without a getrandom() call per write (bench/ saw 4% there);
        # the lock on the upload already keeps two writers of one info file apart.
        temp = final.with_name(f"{final.name}.{_PID}-{next(_TEMP_NAMES)}.tmp")
        with open(temp, "wb") as handle:
            handle.write(_encoder.encode(info))
            if self.fsync:
                handle.flush()
                os.fsync(handle.fileno())
        # rename is atomic: a reader sees the old info or the new one, never half of one.
        os.replace(temp, final)

    async def get_info(self, upload_id: str) -> UploadInfo:
        return await asyncio.to_thread(self._get_info_sync, upload_id)

    def _get_info_sync(self, upload_id: str) -> UploadInfo:
        try:
            with open(self._info_path(upload_id), "rb") as handle:
                raw = handle.read()
            stat = os.stat(self._data_path(upload_id))
        except FileNotFoundError:
            raise UploadNotFound(upload_id) from None
        try:
            info = _decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise StorageError(f"info file of upload {upload_id} is unreadable: {exc}") from exc
        info.offset = stat.st_size
        info.updated_at = max(info.updated_at, stat.st_mtime)
        return info

    # -- bytes ---------------------------------------------------------------------------------
    async def write(
        self,
        info: UploadInfo,
        chunks: AsyncIterable[bytes],
        verify: Callable[[], None] | None = None,
    ) -> int:
        data_path = self._data_path(info.id)
        if verify is None:
            written = await self._append_stream(data_path, chunks, keep_on_error=True)
            return info.offset + written
        pending = data_path.with_name(info.id + _PENDING_SUFFIX)
        try:
            written = await self._append_stream(pending, chunks, keep_on_error=False, truncate=True)
            verify()
            await _finish_in_thread(_append_file, pending, data_path, self.fsync)
        except BaseException:
            await asyncio.to_thread(_unlink_quietly, pending)
            raise
        await asyncio.to_thread(_unlink_quietly, pending)
        return info.offset + written

    async def _append_stream(
        self, path: Path, chunks: AsyncIterable[bytes], *, keep_on_error: bool, truncate: bool = False
    ) -> int:
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_TRUNC if truncate else 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise UploadNotFound(path.name) from None
        writer = _PipelinedWriter(fd)
        written = 0
        batch: list[bytes] = []
        batch_size = 0
        try:
            try:
                async for chunk in chunks:
                    batch.append(chunk)
                    batch_size += len(chunk)
                    if batch_size >= WRITE_BATCH:
                        await writer.submit(batch)
                        written += batch_size
                        batch, batch_size = [], 0
            except BaseException:
                # The stream broke (client gone, lock handed over): what arrived is kept.
                if keep_on_error and batch:
                    await writer.submit(batch)
                raise
            if batch:
                await writer.submit(batch)
                written += batch_size
            await writer.drain()
            if self.fsync:
                await asyncio.to_thread(os.fsync, fd)
        finally:
            await writer.drain_quietly()
            os.close(fd)
        return written

    async def finish(self, info: UploadInfo) -> None:
        await self.update_info(info)

    async def read(self, info: UploadInfo, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        stop = info.offset if end is None else end
        path = self._data_path(info.id)
        if not await aiofiles.os.path.exists(path):
            raise UploadNotFound(info.id)
        async with aiofiles.open(path, "rb") as handle:
            await handle.seek(start)
            position = start
            while position < stop:
                block = await handle.read(min(READ_BLOCK, stop - position))
                if not block:
                    raise StorageError(f"upload {info.id} is shorter than its recorded offset")
                position += len(block)
                yield block

    def local_path(self, upload_id: str) -> Path:
        """The data file, for consumers that can read a local file directly (analysis, sendfile)."""
        return self._data_path(upload_id)

    async def terminate(self, upload_id: str) -> None:
        await asyncio.to_thread(self._terminate_sync, upload_id)

    def _terminate_sync(self, upload_id: str) -> None:
        info_path = self._info_path(upload_id)
        try:
            # Info first: once it is gone the upload no longer exists for any reader.
            info_path.unlink()
        except FileNotFoundError:
            raise UploadNotFound(upload_id) from None
        data_path = self._data_path(upload_id)
        data_path.unlink(missing_ok=True)
        data_path.with_name(upload_id + _PENDING_SUFFIX).unlink(missing_ok=True)

    async def concatenate(self, final: UploadInfo, partials: list[UploadInfo]) -> None:
        sources = [(self._data_path(p.id), p.offset) for p in partials]
        await _finish_in_thread(_concatenate_files, self._data_path(final.id), sources, self.fsync)

    async def sweep_orphans(self, older_than: float) -> int:
        """Staging files, temp info files and data files without info, untouched since ``older_than``."""
        return await asyncio.to_thread(self._sweep_orphans, older_than)

    def _sweep_orphans(self, older_than: float) -> int:
        removed = 0
        names = set(os.listdir(self.directory))
        for name in names:
            path = self.directory / name
            stray = name.endswith((_PENDING_SUFFIX, ".tmp")) or (
                _ID.fullmatch(name) is not None and name + _INFO_SUFFIX not in names
            )
            try:
                if stray and path.stat().st_mtime < older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    async def list_uploads(self) -> AsyncIterator[UploadInfo]:
        names = await asyncio.to_thread(os.listdir, self.directory)
        for name in sorted(names):
            if not name.endswith(_INFO_SUFFIX):
                continue
            upload_id = name[: -len(_INFO_SUFFIX)]
            if not _ID.fullmatch(upload_id):
                continue
            try:
                yield await self.get_info(upload_id)
            except (UploadNotFound, StorageError):
                continue


async def _finish_in_thread(func: Callable[..., None], *args: object) -> None:
    """Run blocking I/O in a thread and wait for it even if this task is cancelled.

    Cancelling the await does not stop the thread; closing the file descriptor under a running
    write (or releasing the upload's lock before the write lands) would corrupt the upload.
    """
    future = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        await future
        raise


class _PipelinedWriter:
    """Writes batches in a worker thread, one at a time and in order, while the caller reads the
    next batch from the network: socket reads and disk writes overlap (double buffering), and
    memory stays at two batches per request."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending: asyncio.Future[None] | None = None

    async def submit(self, batch: list[bytes]) -> None:
        await self.drain()
        self._pending = asyncio.ensure_future(asyncio.to_thread(_writev_all, self._fd, batch))

    async def drain(self) -> None:
        """Wait for the write in flight; raise its error. Waits even if this task is cancelled:
        closing the descriptor (or releasing the upload's lock) under a running write would
        corrupt the upload."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            await asyncio.shield(pending)
        except asyncio.CancelledError:
            await pending
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


def _append_file(source: Path, target: Path, fsync: bool) -> None:
    """Append ``source`` to ``target`` inside the kernel (no copy through Python memory)."""
    # copy_file_range refuses O_APPEND targets, so write at an explicit offset: the end of target.
    with open(source, "rb") as src, open(target, "r+b") as dst:
        remaining = os.fstat(src.fileno()).st_size
        read_at, write_at = 0, os.fstat(dst.fileno()).st_size
        while remaining > 0:
            copied = os.copy_file_range(src.fileno(), dst.fileno(), remaining, read_at, write_at)
            if copied == 0:
                raise StorageError(f"could not append {source.name}: source ended early")
            read_at += copied
            write_at += copied
            remaining -= copied
        if fsync:
            os.fsync(dst.fileno())


def _concatenate_files(target: Path, sources: list[tuple[Path, int]], fsync: bool) -> None:
    """Rebuild ``target`` as the concatenation of ``sources`` inside the kernel (copy_file_range).

    Truncating first makes a retry after a crash produce the same bytes, never a doubled prefix.
    """
    with open(target, "r+b") as dst:
        dst.truncate(0)
        write_at = 0
        for source, length in sources:
            with open(source, "rb") as src:
                read_at = 0
                while read_at < length:
                    copied = os.copy_file_range(src.fileno(), dst.fileno(), length - read_at, read_at, write_at)
                    if copied == 0:
                        raise StorageError(f"partial upload {source.name} is shorter than its length")
                    read_at += copied
                    write_at += copied
        if fsync:
            os.fsync(dst.fileno())


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)


__all__ = ["FileStore", "VerificationFailed"]
