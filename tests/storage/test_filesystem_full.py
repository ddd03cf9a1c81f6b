"""ENOSPC inside one write: StorageFull, the file ends exactly where the disk stopped taking bytes.

The real full disk is tests/http/test_disk_full_http.py. What a real disk cannot produce on
demand is space coming back while the same request still has bytes to write (another upload
deleted meanwhile); os.writev is wrapped to inject that, the one fault this file fakes.
"""

from __future__ import annotations

import builtins
import errno
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from storage_backends.filesystem import WRITE_BATCH, FileStore
from tests.storage.test_filesystem import chunks, read_all
from tusd_py.model.storage_errors import StorageFull
from tusd_py.model.upload import BodyEnded, EndReason, UploadInfo


@pytest.fixture
async def store(tmp_path: Path) -> FileStore:
    s = FileStore(tmp_path / "data")
    await s.start()
    return s


def disk_full_once(monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    """The first writev that would pass byte ``after`` writes up to it, the next one fails with
    ENOSPC, and every later one succeeds again (space came back)."""
    real_writev = os.writev
    state = {"written": 0, "failed": False}

    def writev(fd: int, buffers: Sequence[bytes | memoryview], /) -> int:
        if state["failed"]:
            return real_writev(fd, buffers)
        room = after - int(state["written"])
        if room <= 0:
            state["failed"] = True
            raise OSError(errno.ENOSPC, "No space left on device")
        joined = b"".join(bytes(b) for b in buffers)[:room]
        count = real_writev(fd, [joined])
        state["written"] = int(state["written"]) + count
        return count

    monkeypatch.setattr(os, "writev", writev)


@pytest.mark.parametrize("verify", [False, True])
async def test_no_byte_is_appended_after_a_failed_write(
    store: FileStore, monkeypatch: pytest.MonkeyPatch, verify: bool
) -> None:
    data = bytes(range(256)) * (3 * WRITE_BATCH // 256)
    await store.create(UploadInfo(id="full", length=len(data)))
    info = await store.get_info("full")
    cut = WRITE_BATCH + 1000  # inside the second batch
    disk_full_once(monkeypatch, cut)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in chunks(*(data[i : i + 64 * 1024] for i in range(0, len(data), 64 * 1024))):
            yield chunk
        raise BodyEnded(EndReason.CLIENT_GONE, "and the client went away too")  # the path that flushes what is left

    with pytest.raises(StorageFull, match="no space left"):
        await store.write(info, body(), (lambda: None) if verify else None)
    info = await store.get_info("full")
    if verify:  # all-or-nothing: nothing of the request is kept
        assert info.offset == 0
    else:  # what reached the disk is kept, and nothing after the gap
        assert info.offset == cut
        assert await read_all(store, info) == data[:cut]
    info.offset = await store.write(info, chunks(data[info.offset :]))
    assert await read_all(store, await store.get_info("full")) == data


async def test_no_space_for_a_new_upload_is_storage_full(store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = builtins.open

    def open_refusing_info(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if str(file).endswith(".info"):
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_refusing_info)
    with pytest.raises(StorageFull, match="quota"):
        await store.create(UploadInfo(id="quota", length=3))
    monkeypatch.undo()
    assert sorted(p.name for p in store.directory.iterdir()) == []  # the data file is removed again
