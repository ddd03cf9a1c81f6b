"""Filesystem backend: one data file and one info file (msgspec JSON) per upload.

Durability model: the upload's offset *is* the data file's size. Bytes are appended with plain
``write`` calls, which land in the page cache the moment they return, so a ``kill -9`` of the
server can never leave an offset that exceeds the bytes on disk, and nothing needs rewriting per
PATCH. (Surviving a power cut as well would take an fsync per PATCH; that trade-off is the
operator's, see ``fsync``.)

File creations and renames dominate the cost of a small upload, so the info file is written once,
at creation, and the finish facts (``finished_at``, ``sha256``) go into an extended attribute of
the data file (``user.tusd_py.finish``, one atomic ``setxattr``, see :mod:`file_facts`); only a
change of the info itself rewrites it (temp file + rename). Backups must therefore preserve xattrs
(``cp -a``, ``rsync -X``, ``tar --xattrs``): without them finished uploads lose their finish time
and digest and are finished again at the next start. On file systems without user xattrs (or with
``xattrs=False``) the facts are written into the info file instead.

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
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path

import aiofiles
import aiofiles.os
import msgspec

from storage_backends import file_facts
from storage_backends.base import (
    CAP_CONCATENATION,
    CAP_DEFER_LENGTH,
    CAP_EXPIRATION,
    CAP_TERMINATION,
    UPLOAD_ID,
    DataStore,
    StorageError,
    UploadInfo,
    UploadNotFound,
    VerificationFailed,
    no_space_is_storage_full,
)
from storage_backends.file_facts import NO_FACTS, Facts

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

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = False, xattrs: bool | None = None) -> None:
        """``xattrs``: keep finish facts in an xattr of the data file (True), in the info file (False),
        or whichever the directory's file system allows (None, decided by :meth:`start`)."""
        self.directory = Path(directory)
        self.fsync = fsync
        self._xattrs = xattrs
        #: Which mode is active. Until start() probes, a refused setxattr falls back to the info file.
        self.uses_xattrs = file_facts.AVAILABLE if xattrs is None else xattrs

    async def start(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".probe-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            supported = self._xattrs is not False and file_facts.supported(probe)
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"storage directory {str(self.directory)!r} is not writable: {exc}") from exc
        if self._xattrs and not supported:
            raise StorageError(f"storage directory {str(self.directory)!r} does not support user xattrs")
        self.uses_xattrs = supported

    # -- paths ---------------------------------------------------------------------------------
    def _data_path(self, upload_id: str) -> Path:
        # The core validates ids first; this second check keeps the backend safe on its own.
        if not UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(upload_id)
        return self.directory / upload_id

    def _info_path(self, upload_id: str) -> Path:
        return self._data_path(upload_id).with_name(upload_id + _INFO_SUFFIX)

    # -- info ----------------------------------------------------------------------------------
    # Each info access is one thread hand-off running plain blocking calls, rather than one
    # aiofiles hand-off per open/read/close/stat: bench/ counted 28 hand-offs per small upload.
    async def create(self, info: UploadInfo) -> None:
        with no_space_is_storage_full():
            await asyncio.to_thread(self._create_sync, info)

    def _create_sync(self, info: UploadInfo) -> None:
        data_path = self._data_path(info.id)
        try:
            # O_EXCL: an id collision (or a hook choosing an existing id) must never share a file.
            fd = os.open(data_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:
            raise StorageError(f"upload {info.id} already exists") from None
        os.close(fd)
        info_path = self._info_path(info.id)
        # Written in place, no temp file + rename: until the POST answers 201 no client knows this
        # id, so an info file torn by a crash right here belongs to an upload nobody can resume.
        # get_info reports it as a StorageError; sweep_orphans removes it once it is old.
        written = [data_path]  # removed again if this creation fails
        try:
            with open(info_path, "xb") as handle:
                written.append(info_path)
                handle.write(_encoder.encode(info))
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
        except BaseException as exc:
            for path in reversed(written):
                path.unlink(missing_ok=True)
            if isinstance(exc, FileExistsError):  # a stray info file without data: not ours to remove
                raise StorageError(f"upload {info.id} already exists") from None
            raise

    async def update_info(self, info: UploadInfo) -> None:
        with no_space_is_storage_full():
            await asyncio.to_thread(self._update_info_sync, info)

    def _update_info_sync(self, info: UploadInfo) -> None:
        if not self.uses_xattrs:
            self._write_info_sync(info)
            return
        data_path = self._data_path(info.id)
        try:
            on_data = file_facts.read(data_path)
        except FileNotFoundError:
            raise UploadNotFound(info.id) from None
        stored = self._read_info_quietly(info.id)
        stored_facts = NO_FACTS if stored is None else file_facts.facts_of(stored)
        facts = stored_facts.overlaid(on_data).overlaid(file_facts.facts_of(info))
        # Finishing (and recording a digest after it) changes only the facts: one setxattr then.
        rewrite = stored is None or _file_part(stored) != _file_part(info)
        if rewrite:
            self._write_info_sync(info, facts)
        if facts != on_data:
            try:
                stored_on_data = file_facts.write(data_path, facts, fsync=self.fsync)
            except FileNotFoundError:
                raise UploadNotFound(info.id) from None
            if not stored_on_data and not rewrite:  # no room for an xattr on this file after all
                self._write_info_sync(info, facts)

    def _write_info_sync(self, info: UploadInfo, facts: Facts = NO_FACTS) -> None:
        if facts != NO_FACTS:
            info = msgspec.structs.replace(info, finished_at=facts.finished_at, sha256=facts.sha256)
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
        data_path = self._data_path(upload_id)
        try:
            with open(self._info_path(upload_id), "rb") as handle:
                raw = handle.read()
            stat = os.stat(data_path)
            facts = file_facts.read(data_path) if self.uses_xattrs else NO_FACTS
        except FileNotFoundError:
            raise UploadNotFound(upload_id) from None
        try:
            info = _decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise StorageError(f"info file of upload {upload_id} is unreadable: {exc}") from exc
        file_facts.apply(info, facts)
        info.offset = stat.st_size
        info.updated_at = max(info.updated_at, stat.st_mtime)
        return info

    def _read_info_quietly(self, upload_id: str) -> UploadInfo | None:
        """The info file as stored; None if it is missing or unreadable."""
        try:
            with open(self._info_path(upload_id), "rb") as handle:
                return _decoder.decode(handle.read())
        except (FileNotFoundError, msgspec.DecodeError):
            return None

    # -- bytes ---------------------------------------------------------------------------------
    async def write(
        self,
        info: UploadInfo,
        chunks: AsyncIterable[bytes],
        verify: Callable[[], None] | None = None,
    ) -> int:
        data_path = self._data_path(info.id)
        if verify is None:
            with no_space_is_storage_full():  # what reached the disk before is kept: the offset is the file size
                written = await self._append_stream(data_path, chunks, keep_on_error=True)
            return info.offset + written
        pending = data_path.with_name(info.id + _PENDING_SUFFIX)
        try:
            with no_space_is_storage_full():
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
                # The stream broke (client gone, lock handed over): what arrived is kept. Not after
                # a failed write (a full disk): appending past a partly written batch would leave a gap.
                if keep_on_error and batch and not writer.failed:
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
        try:
            # Opened, not checked then opened: a DELETE may remove the file in between.
            handle = await aiofiles.open(self._data_path(info.id), "rb")
        except FileNotFoundError:
            raise UploadNotFound(info.id) from None
        try:
            await handle.seek(start)
            position = start
            while position < stop:
                block = await handle.read(min(READ_BLOCK, stop - position))
                if not block:
                    raise StorageError(f"upload {info.id} is shorter than its recorded offset")
                position += len(block)
                yield block
        finally:
            await handle.close()

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
        with no_space_is_storage_full():
            await _finish_in_thread(_concatenate_files, self._data_path(final.id), sources, self.fsync)

    async def sweep_orphans(self, older_than: float) -> int:
        """Staging files, temp info files, data files without info, info files without data, and
        uploads whose info file is unreadable (torn by a crash during creation), untouched since
        ``older_than``."""
        return await asyncio.to_thread(self._sweep_orphans, older_than)

    def _sweep_orphans(self, older_than: float) -> int:
        removed = 0
        names = set(os.listdir(self.directory))
        for name in names:
            path = self.directory / name
            if name.endswith(_INFO_SUFFIX):
                removed += self._sweep_info(name[: -len(_INFO_SUFFIX)], older_than)
                continue
            stray = name.endswith((_PENDING_SUFFIX, ".tmp")) or (
                UPLOAD_ID.fullmatch(name) is not None and name + _INFO_SUFFIX not in names
            )
            try:
                if stray and path.stat().st_mtime < older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def _sweep_info(self, upload_id: str, older_than: float) -> int:
        """Remove an old info file that has no data file, or that cannot be decoded while its data
        file is empty (a crash mid-create), with its upload's files.

        An unreadable info next to stored bytes is kept: bytes a client sent are never deleted by
        guesswork; get_info reports it as a storage error for an operator to look at.
        """
        if not UPLOAD_ID.fullmatch(upload_id):
            return 0
        info_path, data_path = self._info_path(upload_id), self._data_path(upload_id)
        try:
            if info_path.stat().st_mtime >= older_than:
                return 0
        except FileNotFoundError:
            return 0
        try:
            stored_bytes: int | None = data_path.stat().st_size
        except FileNotFoundError:
            stored_bytes = None
        if stored_bytes is not None and (stored_bytes > 0 or self._read_info_quietly(upload_id) is not None):
            return 0
        removed = 0
        # Info first, as in terminate: once it is gone the upload no longer exists for any reader.
        for path in (info_path, data_path, data_path.with_name(upload_id + _PENDING_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed

    async def list_uploads(self) -> AsyncIterator[UploadInfo]:
        names = await asyncio.to_thread(os.listdir, self.directory)
        for name in sorted(names):
            if not name.endswith(_INFO_SUFFIX):
                continue
            upload_id = name[: -len(_INFO_SUFFIX)]
            if not UPLOAD_ID.fullmatch(upload_id):
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
        self.failed = False  # a write raised: the file ends somewhere inside that batch

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


def _file_part(info: UploadInfo) -> bytes:
    """What the info file holds apart from the facts (and the offset, which is the data file's size)."""
    return _encoder.encode(msgspec.structs.replace(info, offset=0, updated_at=0.0, finished_at=None, sha256=None))


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)


__all__ = ["FileStore", "VerificationFailed"]
