"""What only the shared store does: migrations racing, leases, SKIP LOCKED claims, NOTIFY wake-ups.

The interface's other guarantees are checked on both stores by test_pipeline_store.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from tests.pipeline.lease_scenarios import (
    claimers_take_each_job_once,
    expired_lease_changes_hands,
    frozen_worker_loses_its_job,
    uploaded,
)
from tusd_py.database.connection import Database
from tusd_py.database.migrations import LATEST, MIGRATIONS
from tusd_py.pipeline.models import JobStatus
from tusd_py.pipeline.postgres_store import PostgresRecordingStore

if TYPE_CHECKING:
    from conftest import FakeClock

pytestmark = pytest.mark.postgres


@pytest.fixture
async def stores(database_url: str, clock: FakeClock) -> AsyncIterator[Callable[..., PostgresRecordingStore]]:
    """Opened stores on one database, each its own instance (own pool), closed at the end."""
    opened: list[PostgresRecordingStore] = []

    def make(**kwargs: Any) -> PostgresRecordingStore:
        store = PostgresRecordingStore(Database(database_url), clock=kwargs.pop("clock", clock), **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def test_instances_starting_at_once_migrate_once(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(db.open() for db in databases))  # four instances start together
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
            tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
        finally:
            await conn.close()
        assert [r["version"] for r in rows] == [version for version, _, _ in MIGRATIONS]
        assert rows[-1]["version"] == LATEST
        assert {"recordings", "jobs", "quota_usage", "quota_claims", "schema_migrations"} <= tables
    finally:
        for db in databases:
            await db.close()
    again = Database(database_url)
    await again.open()  # a restart finds nothing to do
    await again.close()


async def test_an_expired_lease_hands_the_job_to_another_instance(
    stores: Callable[..., PostgresRecordingStore], clock: FakeClock
) -> None:
    first, second = stores(lease_seconds=30, instance="first"), stores(lease_seconds=30, instance="second")
    await first.open()
    await second.open()
    await expired_lease_changes_hands(first, second, clock)
    assert await first.recover_running() == []  # lease stores never requeue at start


async def test_concurrent_claimers_take_each_job_once(
    stores: Callable[..., PostgresRecordingStore], clock: FakeClock
) -> None:
    claimers = [stores(instance=f"i{n}") for n in range(4)]
    for store in claimers:
        await store.open()
    for n in range(24):
        await uploaded(claimers[0], f"u{n:02d}", clock())

    await claimers_take_each_job_once(list(claimers), 24)


async def test_an_enqueue_wakes_other_instances(
    stores: Callable[..., PostgresRecordingStore], clock: FakeClock
) -> None:
    producer, consumer = stores(), stores()
    woken = asyncio.Event()
    consumer.on_job_available(woken.set)
    await consumer.open()
    await producer.open()
    await asyncio.wait_for(woken.wait(), 10)  # the LISTEN connection is up (it wakes once on connect)
    woken.clear()
    await uploaded(producer, "a", clock())
    await asyncio.wait_for(woken.wait(), 10)
    assert (await consumer.claim_job()) is not None


async def test_a_frozen_workers_job_is_finished_by_another_within_the_lease(database_url: str, tmp_path: Path) -> None:
    await frozen_worker_loses_its_job(
        PostgresRecordingStore(Database(database_url), lease_seconds=1.0, instance="frozen"),
        PostgresRecordingStore(Database(database_url), lease_seconds=1.0, instance="live"),
        tmp_path,
    )


async def test_a_completion_claims_the_next_job_in_the_same_statement(
    stores: Callable[..., PostgresRecordingStore], clock: FakeClock
) -> None:
    store, other = stores(instance="worker"), stores(instance="other")
    await store.open()
    await other.open()
    for name in ("a", "b"):
        await uploaded(store, name, clock())
        clock.advance(1)
    first = await store.claim_job()
    assert first is not None and first.job.upload_id == "a"

    done, following = await store.complete_and_claim(first.job.id, first.job.claim_token, {"n": 1})  # type: ignore[misc]
    assert done and following is not None and following.job.upload_id == "b"
    assert following.job.status is JobStatus.RUNNING and following.job.attempts == 1
    assert following.recording.status.value == "processing"
    assert (await store.get_recording("a")).status.value == "completed"
    assert (await store.get_recording("a")).results == {"n": 1}

    # A stale claim is refused (the shared script looks again), and nothing is left to claim:
    # the next due time is known without another statement.
    stale = await other.complete_and_claim(first.job.id, first.job.claim_token, {"n": 2})
    assert stale == (False, None)
    assert (await store.get_recording("a")).results == {"n": 1}
    done, nothing = await store.complete_and_claim(following.job.id, following.job.claim_token, {})  # type: ignore[misc]
    assert done and nothing is None
    assert await store.next_due() is None  # the hint: no job queued, none running
    assert [j.upload_id for j in await store.list_jobs(statuses=[JobStatus.RUNNING])] == []
