"""Give a processing step the upload's bytes as a local file, whatever the storage backend.

Analysis libraries want a seekable file. A backend that keeps uploads on local disk (the
filesystem store's ``local_path``) is read in place; any other (S3) is streamed through
``DataStore.read`` into a temporary file one chunk at a time, so memory stays bounded by the
backend's chunk size however long the recording is. The temporary file is removed on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import structlog

from storage_backends.base import DataStore
from tusd_py.model.upload import UploadInfo

log = structlog.get_logger(__name__)


@runtime_checkable
class LocalFileStore(Protocol):
    """Optional capability: the backend can name the file holding an upload's bytes."""

    def local_path(self, upload_id: str) -> Path: ...


def _usable(path: Path, size: int) -> bool:
    try:
        return path.is_file() and path.stat().st_size >= size
    except OSError:
        return False


@contextlib.asynccontextmanager
async def local_copy(store: DataStore, info: UploadInfo, directory: str | None = None) -> AsyncIterator[Path]:
    """Yield a path to a file holding the upload's ``info.offset`` bytes."""
    if isinstance(store, LocalFileStore):
        path = Path(store.local_path(info.id))
        if _usable(path, info.offset):  # one stat: cheaper inline than a thread hand-off
            yield path
            return
    fd, name = await asyncio.to_thread(tempfile.mkstemp, prefix=f"tusd-{info.id[:32]}-", dir=directory)
    try:
        try:
            async for chunk in store.read(info):
                await asyncio.to_thread(_write_all, fd, chunk)
        finally:
            os.close(fd)
        yield Path(name)
    finally:
        await asyncio.to_thread(_unlink, name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlink(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)
