"""Where the SQLite store's batches run (tusd_py/pipeline/sqlite_batches.py): on the event loop for
a process alone on its file, on the store's thread for what can block (another process's write
lock, the WAL checkpoint) and for a file shared by several processes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tusd_py.pipeline import sqlite_batches
from tusd_py.pipeline.models import Recording
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore
from tusd_py.pipeline.states import Status

if TYPE_CHECKING:  # the fixture's type; conftest is pytest's to import, never ours
    from conftest import FakeClock


def new(upload_id: str, at: float) -> Recording:
    return Recording(id=upload_id, owner="alice", status=Status.RECORDED, length=100, created_at=at, updated_at=at)


async def ran_on(store: SQLiteRecordingStore) -> threading.Thread:
    """The thread that runs the store's next batch (an operation of that batch says where it is)."""
    return await store._run(lambda conn: threading.current_thread(), write=False)


async def test_a_process_alone_runs_its_batches_on_the_event_loop(
    sqlite_store: SQLiteRecordingStore, clock: FakeClock
) -> None:
    assert await ran_on(sqlite_store) is threading.current_thread()
    await sqlite_store.create_recording(new("a", clock()))
    assert (await sqlite_store.get_recording("a")).status is Status.RECORDED


async def test_a_shared_file_runs_every_batch_on_the_stores_thread(tmp_path: Path, clock: FakeClock) -> None:
    store = SQLiteRecordingStore(tmp_path / "state.sqlite3", clock=clock, lease_seconds=30)
    await store.open()
    try:
        assert await ran_on(store) is not threading.current_thread()
    finally:
        await store.close()


async def test_a_store_that_syncs_every_commit_keeps_its_batches_on_the_thread(
    tmp_path: Path, clock: FakeClock
) -> None:
    """synchronous=FULL makes each COMMIT wait for the disk: never on the event loop."""
    store = SQLiteRecordingStore(tmp_path / "state.sqlite3", clock=clock, synchronous="FULL")
    await store.open()
    try:
        assert await ran_on(store) is not threading.current_thread()
    finally:
        await store.close()


async def test_another_processs_write_lock_is_waited_for_on_the_thread_not_the_loop(
    sqlite_store: SQLiteRecordingStore, clock: FakeClock
) -> None:
    """While another connection (``tusd-py cleanup``) holds the write lock, a write is neither
    refused nor run on the loop: the loop keeps serving, and the write lands once the lock is free."""
    other = sqlite3.connect(sqlite_store.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.ensure_future(sqlite_store.create_recording(new("waited", clock())))
        ticks = 0
        for _ in range(20):  # the loop is free while the write waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert not write.done() and ticks == 20
        other.execute("COMMIT")
        created = await asyncio.wait_for(write, timeout=5)
        assert created.id == "waited"
    finally:
        other.close()
    # Batches stay on the thread for a while after that, then run inline again.
    assert await ran_on(sqlite_store) is not threading.current_thread()
    sqlite_store._batches._threaded_until = 0.0
    assert await ran_on(sqlite_store) is threading.current_thread()


async def test_the_wal_is_checkpointed_on_the_thread(
    sqlite_store: SQLiteRecordingStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Automatic checkpoints are off inline (they sync the files); every CHECKPOINT_EVERY commits
    one runs on the store's thread, so the WAL is copied back and does not grow without end."""
    monkeypatch.setattr(sqlite_batches, "CHECKPOINT_EVERY", 5)
    checkpoints: list[threading.Thread] = []
    checkpoint = sqlite_store._batches._checkpoint

    def observed() -> None:
        checkpoints.append(threading.current_thread())
        checkpoint()

    monkeypatch.setattr(sqlite_store._batches, "_checkpoint", observed)
    for n in range(12):
        await sqlite_store.create_recording(new(f"r{n}", clock()))
    await ran_on(sqlite_store)  # the batch after a checkpoint comes after it
    assert len(checkpoints) == 2 and threading.current_thread() not in checkpoints
    with sqlite3.connect(sqlite_store.path) as conn:
        assert conn.execute("SELECT count(*) FROM recordings").fetchone()[0] == 12
