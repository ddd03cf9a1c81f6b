"""The SQLite store shared by the workers of ``--processes N``: jobs claimed with a lease, as on
PostgreSQL (test_pipeline_postgres_store.py asks the same of it), several connections on one file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.pipeline.lease_scenarios import (
    claimers_take_each_job_once,
    expired_lease_changes_hands,
    frozen_worker_loses_its_job,
    uploaded,
)
from tusd_py.pipeline.sqlite_schema import SCHEMA, SCHEMA_VERSION
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore

if TYPE_CHECKING:
    from conftest import FakeClock


@pytest.fixture
async def stores(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Callable[..., SQLiteRecordingStore]]:
    """Stores on one file, each as one worker process would open it (its own connection)."""
    opened: list[SQLiteRecordingStore] = []

    def make(**kwargs: Any) -> SQLiteRecordingStore:
        kwargs.setdefault("lease_seconds", 30.0)
        store = SQLiteRecordingStore(tmp_path / "state.sqlite3", clock=clock, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def test_an_expired_lease_hands_the_job_to_another_worker(
    stores: Callable[..., SQLiteRecordingStore], clock: FakeClock
) -> None:
    first, second = stores(), stores()
    await asyncio.gather(first.open(), second.open())  # workers start together: one migration
    assert first.uses_leases and second.uses_leases
    await expired_lease_changes_hands(first, second, clock)


async def test_concurrent_claimers_take_each_job_once(
    stores: Callable[..., SQLiteRecordingStore], clock: FakeClock
) -> None:
    claimers = [stores() for _ in range(4)]
    for store in claimers:
        await store.open()
    for n in range(24):
        await uploaded(claimers[n % 4], f"u{n:02d}", clock())

    await claimers_take_each_job_once(list(claimers), 24)


async def test_one_process_alone_keeps_requeueing_at_start(tmp_path: Path, clock: FakeClock) -> None:
    alone = SQLiteRecordingStore(tmp_path / "state.sqlite3", clock=clock)
    await alone.open()
    try:
        assert not alone.uses_leases
        await uploaded(alone, "a", clock())
        assert await alone.claim_job() is not None
        assert await alone.recover_running() == ["a"]
    finally:
        await alone.close()


def test_an_older_database_gains_the_lease_columns(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)  # version 3: no lease columns
        db.execute("PRAGMA user_version = 3")

    async def open_and_close() -> None:
        store = SQLiteRecordingStore(path, lease_seconds=5)
        await store.open()
        await store.close()

    asyncio.run(open_and_close())
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        indexes = {row[1] for row in db.execute("PRAGMA index_list(jobs)")}
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert {"lease_until", "claimed_by"} <= columns and "jobs_leases" in indexes


async def test_a_frozen_workers_job_is_finished_by_another_within_the_lease(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    await frozen_worker_loses_its_job(
        SQLiteRecordingStore(path, lease_seconds=1.0), SQLiteRecordingStore(path, lease_seconds=1.0), tmp_path
    )
