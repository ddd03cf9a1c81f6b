"""Where the filesystem backend writes a batch: on the event loop while the disk keeps up, in a
thread for a while after one write blocked (storage_backends/file_io.py, WritePlacement)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from storage_backends.file_io import SLOW_WRITE, THREAD_AFTER_SLOW_WRITE, WritePlacement
from storage_backends.filesystem import WRITE_BATCH, FileStore
from tusd_py.model.upload import UploadInfo


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fast_writes_stay_on_the_loop_and_a_slow_one_sends_the_next_to_a_thread_for_a_while() -> None:
    clock = Clock()
    placement = WritePlacement(clock)
    assert placement.inline()
    placement.took(SLOW_WRITE / 10)
    assert placement.inline()
    placement.took(SLOW_WRITE * 2)
    assert not placement.inline()
    clock.now += THREAD_AFTER_SLOW_WRITE / 2
    assert not placement.inline()
    clock.now += THREAD_AFTER_SLOW_WRITE / 2
    assert placement.inline()  # tried again: a disk that recovered gets the fast path back


async def _batches(payload: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(payload), 64 * 1024):
        yield payload[at : at + 64 * 1024]


async def test_after_a_slow_write_the_rest_go_to_a_thread_and_the_bytes_are_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path / "data")
    await store.start()
    payload = os.urandom(4 * WRITE_BATCH + 123)
    await store.create(UploadInfo(id="slow", length=len(payload)))
    info = await store.get_info("slow")
    loop_thread = threading.get_ident()
    writers: list[bool] = []  # per writev: was it on the event loop's thread?
    real_writev = os.writev

    def writev(fd: int, buffers: Sequence[bytes]) -> int:
        on_loop = threading.get_ident() == loop_thread
        if not writers:
            time.sleep(SLOW_WRITE * 4)  # a disk under dirty-page throttling: a fault a real tmpfs cannot produce
        writers.append(on_loop)
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "writev", writev)
    assert await store.write(info, _batches(payload)) == len(payload)
    monkeypatch.undo()
    assert writers[0] is True and len(writers) >= 5  # a fresh store writes on the loop
    assert not any(writers[1:]), writers
    assert (tmp_path / "data" / "slow").read_bytes() == payload


class _Held:
    """A lock's fence with a token (a shared lock's): the store writes under ``<id>.fence``."""

    token = 7

    async def check(self) -> None:
        return None


async def test_fenced_batches_go_on_the_loop_unless_the_fence_flock_is_taken_then_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path / "data")
    await store.start()
    payload = os.urandom(2 * WRITE_BATCH)
    await store.create(UploadInfo(id="fenced", length=2 * len(payload)))
    loop_thread = threading.get_ident()
    writers: list[bool] = []
    real_writev = os.writev

    def writev(fd: int, buffers: Sequence[bytes]) -> int:
        writers.append(threading.get_ident() == loop_thread)
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "writev", writev)
    info = await store.get_info("fenced")
    assert await store.write(info, _batches(payload), fence=_Held()) == len(payload)
    assert writers and all(writers), writers  # a free flock: no hand-off to a thread
    fence_path = tmp_path / "data" / "fenced.fence"
    assert int.from_bytes(fence_path.read_bytes(), "big") == 7

    # Another holder is inside its batch (holds the flock): this write waits for it in a thread.
    writers.clear()
    other = os.open(fence_path, os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)
    released = threading.Timer(0.2, fcntl.flock, (other, fcntl.LOCK_UN))
    released.start()
    try:
        info = await store.get_info("fenced")
        started = time.monotonic()
        assert await store.write(info, _batches(payload), fence=_Held()) == 2 * len(payload)
        assert time.monotonic() - started >= 0.15  # it waited for the flock
    finally:
        released.join()
        os.close(other)
    monkeypatch.undo()
    assert writers[0] is False  # the first batch waited in a thread, nothing written before
    assert (tmp_path / "data" / "fenced").read_bytes() == payload + payload
