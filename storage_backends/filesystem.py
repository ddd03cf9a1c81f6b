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

from storage_backends import file_facts, file_sweep
from storage_backends.base import (
    CAP_CONCATENATION,
    CAP_DEFER_LENGTH,
    CAP_EXPIRATION,
    CAP_TERMINATION,
    DataStore,
    no_space_is_storage_full,
)
from storage_backends.file_facts import NO_FACTS, Facts
from storage_backends.file_fence import FENCE_SUFFIX, FileFence
from storage_backends.file_io import (
    READ_BLOCK,
    WRITE_BATCH,
    PipelinedWriter,
    WritePlacement,
    append_file,
    concatenate_files,
    finish_in_thread,
    unlink_quietly,
)
from storage_backends.file_sweep import INFO_SUFFIX, PENDING_SUFFIX
from tusd_py.model.fencing import NO_FENCE, Fence, confirm
from tusd_py.model.storage_errors import StorageError, UploadNotFound, VerificationFailed
from tusd_py.model.upload import UPLOAD_ID, UploadInfo

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
        # The hot paths build file names as strings: a pathlib join per call was ~5% of a small
        # upload's event-loop time (bench/ small, py-spy).
        self._prefix = os.path.join(os.fspath(directory), "")
        self.fsync = fsync
        self._xattrs = xattrs
        #: Which mode is active. Until start() probes, a refused setxattr falls back to the info file.
        self.uses_xattrs = file_facts.AVAILABLE if xattrs is None else xattrs
        self._placement = WritePlacement()  # one per store: a slow disk slows every upload on it

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
    def location(self, upload_id: str) -> dict[str, str]:
        # abspath, not resolve(): a string operation, no syscall on the event loop.
        return {"type": "filesystem", "path": os.path.abspath(self._data_path(upload_id))}

    def _data_path(self, upload_id: str) -> Path:
        # The core validates ids first; this second check keeps the backend safe on its own.
        if not UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(upload_id)
        return self.directory / upload_id

    def _info_path(self, upload_id: str) -> Path:
        return self._data_path(upload_id).with_name(upload_id + INFO_SUFFIX)

    def _data_file(self, upload_id: str) -> str:
        """:meth:`_data_path` as a string (the same check, no Path object)."""
        if not UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(upload_id)
        return self._prefix + upload_id

    def _info_file(self, upload_id: str) -> str:
        return self._data_file(upload_id) + INFO_SUFFIX

    # -- info ----------------------------------------------------------------------------------
    # Info accesses are a few syscalls on small files (open, read, stat, getxattr: microseconds
    # in the page cache), so they run on the event loop: a thread hand-off costs more than the
    # work (two futex wake-ups and a GIL hand-over; bench/RESULTS.md, profile of `small`). With
    # ``fsync`` a write waits for the disk, milliseconds, and goes to a thread as before.
    async def create(self, info: UploadInfo) -> None:
        with no_space_is_storage_full():
            await self._blocking(self._create_sync, info)

    async def _blocking(self, func: Callable[[UploadInfo], None], info: UploadInfo) -> None:
        """Run an info write: inline when it only touches the page cache, in a thread with fsync."""
        if self.fsync:
            await asyncio.to_thread(func, info)
        else:
            func(info)

    def _create_sync(self, info: UploadInfo) -> None:
        data_path = self._data_file(info.id)
        try:
            # O_EXCL: an id collision (or a hook choosing an existing id) must never share a file.
            fd = os.open(data_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:
            raise StorageError(f"upload {info.id} already exists") from None
        os.close(fd)
        info_path = data_path + INFO_SUFFIX
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
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            if isinstance(exc, FileExistsError):  # a stray info file without data: not ours to remove
                raise StorageError(f"upload {info.id} already exists") from None
            raise

    async def update_info(self, info: UploadInfo, fence: Fence | None = None) -> None:
        await confirm(fence)
        with no_space_is_storage_full():
            await self._blocking(self._update_info_sync, info)

    def _update_info_sync(self, info: UploadInfo) -> None:
        if not self.uses_xattrs:
            self._write_info_sync(info)
            return
        data_path = self._data_file(info.id)
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

    async def record_digest(self, upload_id: str, sha256: str) -> bool:
        """Without the upload's lock (see DataStore.record_digest): the facts xattr of the data file,
        read and set through one descriptor. The descriptor pins the file (inode) that was opened: if
        a termination unlinks it meanwhile, the write lands on a file nobody can reach any more, and
        an upload made anew under the same id is another file, never touched; nothing is created. The
        digest is added only to facts that say this very file was finished (facts are only ever added,
        and finish, their one other writer, ran before processing began). Without xattrs (or when
        this file's facts live in the info file) the info file would have to be replaced, which no
        descriptor can make conditional: False, the core takes the lock."""
        if not self.uses_xattrs:
            return False
        with no_space_is_storage_full():
            if self.fsync:  # the descriptor is opened and closed by the thread: a cancelled caller
                # must not close it under a thread still writing through it
                return await asyncio.to_thread(self._record_digest_sync, upload_id, sha256)
            return self._record_digest_sync(upload_id, sha256)

    def _record_digest_sync(self, upload_id: str, sha256: str) -> bool:
        try:
            fd = os.open(self._data_file(upload_id), os.O_RDONLY)
        except FileNotFoundError:
            return True  # gone: nothing to record
        try:
            facts = file_facts.read(fd)
            if facts.finished_at is None:  # not finished, or its facts are in the info file
                return False
            if facts.sha256 == sha256:
                return True
            return file_facts.write(fd, Facts(finished_at=facts.finished_at, sha256=sha256), fsync=self.fsync)
        finally:
            os.close(fd)

    def _write_info_sync(self, info: UploadInfo, facts: Facts = NO_FACTS) -> None:
        if facts != NO_FACTS:
            info = msgspec.structs.replace(info, finished_at=facts.finished_at, sha256=facts.sha256)
        final = self._info_file(info.id)
        # Unique within this process without a getrandom() call per write (bench/ saw 4% there);
        # the lock on the upload already keeps two writers of one info file apart.
        temp = f"{final}.{_PID}-{next(_TEMP_NAMES)}.tmp"
        with open(temp, "wb") as handle:
            handle.write(_encoder.encode(info))
            if self.fsync:
                handle.flush()
                os.fsync(handle.fileno())
        # rename is atomic: a reader sees the old info or the new one, never half of one.
        os.replace(temp, final)

    async def get_info(self, upload_id: str) -> UploadInfo:
        return self._get_info_sync(upload_id)  # read-only syscalls on small files: inline (see above)

    def _get_info_sync(self, upload_id: str) -> UploadInfo:
        data_path = self._data_file(upload_id)
        try:
            with open(data_path + INFO_SUFFIX, "rb") as handle:
                raw = handle.read()
            # open + fstat, not stat: on a shared network mount (NFS) opening revalidates the
            # file's attributes (close-to-open consistency), so the size is the one the previous
            # lock holder left on another machine, where a path stat may answer from a cache.
            fd = os.open(data_path, os.O_RDONLY)
            try:
                stat = os.fstat(fd)
            finally:
                os.close(fd)
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
            with open(self._info_file(upload_id), "rb") as handle:
                return _decoder.decode(handle.read())
        except (FileNotFoundError, msgspec.DecodeError):
            return None

    # -- bytes ---------------------------------------------------------------------------------
    async def write(
        self,
        info: UploadInfo,
        chunks: AsyncIterable[bytes],
        verify: Callable[[], None] | None = None,
        fence: Fence | None = None,
    ) -> int:
        fence = fence or NO_FENCE
        data_file = self._data_file(info.id)
        # A shared lock's fence (tokens > 0): every batch is appended under the upload's fence
        # file (file_fence.py) after the lock service confirmed this holder (once per batch, just
        # before it: nothing is committed earlier, so no check up front). Unfenced: no extra call.
        file_fence = None
        if fence.token:
            file_fence = FileFence(Path(data_file + FENCE_SUFFIX), fence.token)  # opened by its first batch
        try:
            if verify is None:
                with no_space_is_storage_full():  # what reached the disk before is kept: the offset is the file size
                    written = await self._append_stream(
                        data_file, chunks, keep_on_error=True, fence=fence, file_fence=file_fence, position=info.offset
                    )
                return info.offset + written
            pending = Path(data_file + PENDING_SUFFIX)
            try:
                with no_space_is_storage_full():
                    written = await self._append_stream(pending, chunks, keep_on_error=False, truncate=True)
                    verify()
                    if file_fence is not None:
                        await fence.check()
                    await finish_in_thread(append_file, pending, Path(data_file), self.fsync, file_fence, info.offset)
            except BaseException:
                await asyncio.to_thread(unlink_quietly, pending)
                raise
            await asyncio.to_thread(unlink_quietly, pending)
            return info.offset + written
        finally:
            if file_fence is not None:
                file_fence.close()

    async def _append_stream(
        self,
        path: str | Path,
        chunks: AsyncIterable[bytes],
        *,
        keep_on_error: bool,
        truncate: bool = False,
        fence: Fence = NO_FENCE,
        file_fence: FileFence | None = None,
        position: int = 0,
    ) -> int:
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_TRUNC if truncate else 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise UploadNotFound(os.path.basename(path)) from None
        writer = PipelinedWriter(fd, self._placement, file_fence, position)

        async def submit(batch: list[bytes], size: int) -> None:
            if file_fence is not None:
                await fence.check()  # the lock service first: a holder that lost its lease stops here
            await writer.submit(batch, size)

        written = 0
        batch: list[bytes] = []
        batch_size = 0
        try:
            try:
                async for chunk in chunks:
                    batch.append(chunk)
                    batch_size += len(chunk)
                    if batch_size >= WRITE_BATCH:
                        await submit(batch, batch_size)
                        written += batch_size
                        batch, batch_size = [], 0
            except BaseException:
                # The stream broke (client gone, lock handed over): what arrived is kept. Not after
                # a failed write (a full disk): appending past a partly written batch would leave a gap.
                if keep_on_error and batch and not writer.failed:
                    await submit(batch, batch_size)
                raise
            if batch:
                await submit(batch, batch_size)
                written += batch_size
            await writer.drain()
            if self.fsync:
                await asyncio.to_thread(os.fsync, fd)
        finally:
            await writer.drain_quietly()
            os.close(fd)
        return written

    async def finish(self, info: UploadInfo, fence: Fence | None = None) -> None:
        await self.update_info(info, fence)

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

    async def terminate(self, upload_id: str, fence: Fence | None = None) -> None:
        await confirm(fence)
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
        data_path.with_name(upload_id + PENDING_SUFFIX).unlink(missing_ok=True)
        data_path.with_name(upload_id + FENCE_SUFFIX).unlink(missing_ok=True)

    async def concatenate(self, final: UploadInfo, partials: list[UploadInfo], fence: Fence | None = None) -> None:
        await confirm(fence)
        sources = [(self._data_path(p.id), p.offset) for p in partials]
        with no_space_is_storage_full():
            await finish_in_thread(concatenate_files, self._data_path(final.id), sources, self.fsync)

    async def sweep_orphans(self, older_than: float) -> int:
        """Debris of crashes and interrupted requests, untouched since ``older_than`` (see file_sweep)."""
        return await asyncio.to_thread(file_sweep.sweep_orphans, self.directory, older_than, self._read_info_quietly)

    async def list_uploads(self) -> AsyncIterator[UploadInfo]:
        names = await asyncio.to_thread(os.listdir, self.directory)
        for name in sorted(names):
            if not name.endswith(INFO_SUFFIX):
                continue
            upload_id = name[: -len(INFO_SUFFIX)]
            if not UPLOAD_ID.fullmatch(upload_id):
                continue
            try:
                yield await self.get_info(upload_id)
            except (UploadNotFound, StorageError):
                continue


def _file_part(info: UploadInfo) -> bytes:
    """What the info file holds apart from the facts (and the offset, which is the data file's size)."""
    return _encoder.encode(msgspec.structs.replace(info, offset=0, updated_at=0.0, finished_at=None, sha256=None))


__all__ = ["WRITE_BATCH", "FileStore", "VerificationFailed"]
