"""Both RecordingStores (SQLite, PostgreSQL): durability across restarts, the queue's guarantees,
queries scoped by owner. The ``store`` fixture runs each test on each store."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tusd_py.pipeline.models import JobStatus, Recording
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore
from tusd_py.pipeline.states import Status
from tusd_py.pipeline.store import EVERYONE, InvalidCursor, RecordingNotFound, RecordingStore

if TYPE_CHECKING:  # the fixture's type; conftest is pytest's to import, never ours
    from conftest import FakeClock


def new(upload_id: str, owner: str | None = "alice", *, at: float = 0.0, length: int | None = 100) -> Recording:
    return Recording(id=upload_id, owner=owner, status=Status.RECORDED, length=length, created_at=at, updated_at=at)


async def add(store: RecordingStore, clock: FakeClock, upload_id: str, owner: str | None = "alice") -> None:
    await store.create_recording(new(upload_id, owner, at=clock()))


async def add_uploaded(store: RecordingStore, clock: FakeClock, upload_id: str, owner: str | None = "alice") -> None:
    await add(store, clock, upload_id, owner)
    await store.mark_uploaded(upload_id, 100)


async def test_uses_a_wal_database_file(sqlite_store: SQLiteRecordingStore) -> None:
    with sqlite3.connect(sqlite_store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"recordings", "jobs"} <= tables


async def test_upload_lifecycle_statuses(store: RecordingStore, clock: FakeClock) -> None:
    created = await store.create_recording(new("a", at=clock()))
    assert created.status is Status.RECORDED and created.offset == 0
    assert (await store.report_progress("a", 0)).status is Status.RECORDED  # no bytes yet
    assert (await store.report_progress("a", 40)).status is Status.UPLOADING
    assert (await store.report_progress("a", 30)).offset == 40  # offsets never go back
    rec, enqueued = await store.mark_uploaded("a")
    assert enqueued and rec.status is Status.UPLOADED and rec.offset == 100 and rec.job_id
    late = await store.report_progress("a", 90)  # a progress task that lands after finishing
    assert late.status is Status.UPLOADED and late.offset == 100


async def test_create_is_idempotent(store: RecordingStore, clock: FakeClock) -> None:
    await add(store, clock, "a")
    await store.report_progress("a", 10)
    again = await store.create_recording(new("a", at=clock()))
    assert again.status is Status.UPLOADING and again.offset == 10


async def test_unknown_recording(store: RecordingStore) -> None:
    with pytest.raises(RecordingNotFound):
        await store.report_progress("nope", 1)
    with pytest.raises(RecordingNotFound):
        await store.mark_uploaded("nope")
    assert await store.delete_recording("nope") is False


async def test_enqueue_is_idempotent_even_concurrently(store: RecordingStore, clock: FakeClock) -> None:
    await add(store, clock, "a")
    outcomes = await asyncio.gather(*(store.mark_uploaded("a") for _ in range(10)))
    assert sorted(enqueued for _, enqueued in outcomes) == [False] * 9 + [True]
    assert len({rec.job_id for rec, _ in outcomes}) == 1
    jobs = await store.list_jobs()
    assert [job.upload_id for job in jobs] == ["a"]
    # Redelivered after processing too: still no second job.
    claim = await store.claim_job()
    assert claim is not None
    await store.complete_job(claim.job.id, claim.job.claim_token, {})
    assert (await store.mark_uploaded("a"))[1] is False
    assert await store.claim_job() is None


async def test_restart_in_the_middle_of_processing(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "crash.sqlite3"
    first = SQLiteRecordingStore(db, clock=clock)
    await first.open()
    await add_uploaded(first, clock, "a")
    claim = await first.claim_job()
    assert claim is not None and claim.recording.status is Status.PROCESSING
    await first.close()  # the process dies: no report for the claim

    second = SQLiteRecordingStore(db, clock=clock)
    await second.open()
    try:
        assert await second.recover_running() == ["a"]
        assert (await second.get_recording("a")).status is Status.UPLOADED
        rerun = await second.claim_job()
        assert rerun is not None and rerun.job.id == claim.job.id
        assert await second.claim_job() is None  # exactly once
        # The dead process's claim is orphaned: its late report must not count.
        assert await second.complete_job(claim.job.id, claim.job.claim_token, {"stale": True}) is False
        assert await second.complete_job(rerun.job.id, rerun.job.claim_token, {"step": {"ok": 1}})
        done = await second.get_recording("a")
        assert done.status is Status.COMPLETED and done.results == {"step": {"ok": 1}}
        assert done.attempts == 2 and done.completed_at is not None
        assert await second.recover_running() == []
    finally:
        await second.close()


async def test_retries_with_backoff_then_failed(store: RecordingStore, clock: FakeClock) -> None:
    await add_uploaded(store, clock, "a")
    delays = [4.0, 8.0, None]
    for attempt, delay in enumerate(delays, start=1):
        claim = await store.claim_job()
        assert claim is not None and claim.job.attempts == attempt
        assert await store.fail_attempt(claim.job.id, claim.job.claim_token, f"boom {attempt}", delay)
        if delay is None:
            break
        rec = await store.get_recording("a")
        assert rec.status is Status.PROCESSING and rec.last_error == f"boom {attempt}"
        assert await store.next_due() == pytest.approx(clock() + delay)
        assert await store.claim_job() is None  # not before the backoff
        clock.advance(delay - 0.5)
        assert await store.claim_job() is None
        clock.advance(0.5)
    rec = await store.get_recording("a")
    assert rec.status is Status.FAILED and rec.attempts == 3 and rec.last_error == "boom 3"
    (job,) = await store.list_jobs(statuses=[JobStatus.DEAD])
    assert job.attempts == 3 and job.last_error == "boom 3"
    assert await store.claim_job() is None and await store.next_due() is None


async def test_sync_retries_failed_and_requeues_stuck(store: RecordingStore, clock: FakeClock) -> None:
    for name in ("failed", "stuck", "fresh", "other"):
        await add_uploaded(store, clock, name, owner="bob" if name == "other" else "alice")
    claims = {}
    for _ in range(4):
        claim = await store.claim_job()
        assert claim is not None
        claims[claim.job.upload_id] = claim
    failed = claims["failed"].job
    await store.fail_attempt(failed.id, failed.claim_token, "bad", None)
    clock.advance(100)
    fresh = claims["fresh"].job
    await store.fail_attempt(fresh.id, fresh.claim_token, "later", 1.0)  # waiting for backoff: not stuck
    assert sorted(await store.retry("alice", stuck_before=clock() - 50)) == ["failed", "stuck"]
    again = await store.get_recording("failed")
    assert again.status is Status.PROCESSING
    assert (await store.get_recording("stuck")).status is Status.UPLOADED
    assert (await store.get_recording("other")).status is Status.PROCESSING  # bob's, untouched
    queued = {job.upload_id: job for job in await store.list_jobs("alice", statuses=[JobStatus.QUEUED])}
    assert set(queued) == {"failed", "stuck", "fresh"} and queued["failed"].attempts == 0
    stale = claims["stuck"].job
    assert await store.fail_attempt(stale.id, stale.claim_token, "late", None) is False
    assert await store.retry("alice") == []  # nothing left to retry


async def test_termination_removes_recording_and_job(store: RecordingStore, clock: FakeClock) -> None:
    await add_uploaded(store, clock, "a")
    claim = await store.claim_job()
    assert claim is not None
    assert await store.delete_recording("a") is True
    assert await store.list_jobs(statuses=list(JobStatus)) == []
    assert await store.complete_job(claim.job.id, claim.job.claim_token, {}) is False  # worker finishing late
    with pytest.raises(RecordingNotFound):
        await store.get_recording("a")


async def test_pagination_edges(store: RecordingStore, clock: FakeClock) -> None:
    empty = await store.list_recordings("alice", limit=3)
    assert empty.items == [] and empty.next_cursor is None
    for n in range(3):
        await add(store, clock, f"r{n}")
        clock.advance(1)
    exact = await store.list_recordings("alice", limit=3)
    assert [r.id for r in exact.items] == ["r2", "r1", "r0"] and exact.next_cursor is None
    for n in range(3, 7):
        await add(store, clock, f"r{n}")  # same timestamp: ties are ordered by id
    seen, cursor, pages = [], None, 0
    while True:
        page = await store.list_recordings("alice", limit=3, cursor=cursor)
        seen += [r.id for r in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["r6", "r5", "r4", "r3", "r2", "r1", "r0"] and pages == 3
    last = await store.list_recordings("alice", limit=3, cursor=cursor)
    assert [r.id for r in last.items] == ["r0"] and last.next_cursor is None
    for bad in ("garbage!", "", base64.urlsafe_b64encode(b'{"a": 1}').decode(), "W10"):
        with pytest.raises(InvalidCursor):
            await store.list_recordings("alice", cursor=bad)
    for limit in (0, 10_000):
        with pytest.raises(ValueError):
            await store.list_recordings("alice", limit=limit)


async def test_status_filter(store: RecordingStore, clock: FakeClock) -> None:
    await add(store, clock, "a")
    await add_uploaded(store, clock, "b")
    page = await store.list_recordings("alice", statuses=[Status.UPLOADED])
    assert [r.id for r in page.items] == ["b"]
    assert (await store.list_recordings("alice", statuses=[])).items == []
    both = await store.list_recordings("alice", statuses=[Status.UPLOADED, Status.RECORDED])
    assert {r.id for r in both.items} == {"a", "b"}


async def test_other_users_recordings_are_invisible(store: RecordingStore, clock: FakeClock) -> None:
    await add_uploaded(store, clock, "mine", owner="alice")
    await add_uploaded(store, clock, "anon", owner=None)
    for owner in ("bob", None):
        with pytest.raises(RecordingNotFound):
            await store.get_recording("mine", owner)
    assert [r.id for r in (await store.list_recordings("bob")).items] == []
    assert [r.id for r in (await store.list_recordings(None)).items] == ["anon"]
    assert (await store.stats("bob")).total_count == 0
    assert [j.upload_id for j in await store.list_jobs("bob")] == []
    assert [j.upload_id for j in await store.list_jobs("alice")] == ["mine"]
    assert len(await store.list_jobs(EVERYONE)) == 2
    assert await store.retry("bob", stuck_before=clock() + 1) == []


async def test_stats_per_status(store: RecordingStore, clock: FakeClock) -> None:
    await add(store, clock, "a")
    await store.report_progress("a", 30)
    await add_uploaded(store, clock, "b")
    await add_uploaded(store, clock, "c")
    await add(store, clock, "d")
    await add_uploaded(store, clock, "x", owner="bob")
    stats = await store.stats("alice")
    assert stats.by_status[Status.UPLOADING].count == 1 and stats.by_status[Status.UPLOADING].bytes == 30
    assert stats.by_status[Status.UPLOADED].count == 2 and stats.by_status[Status.UPLOADED].bytes == 200
    assert stats.by_status[Status.RECORDED].count == 1 and stats.by_status[Status.RECORDED].bytes == 0
    assert stats.by_status[Status.COMPLETED].count == 0
    assert (stats.total_count, stats.total_bytes) == (4, 230)


async def test_failed_before_lists_by_age_and_owner_and_forgets_nothing(
    store: RecordingStore, clock: FakeClock
) -> None:
    for name, owner in (("old", "alice"), ("old-bob", "bob"), ("done", "alice")):
        await add_uploaded(store, clock, name, owner)
        claim = await store.claim_job()
        assert claim is not None
        if name == "done":
            await store.complete_job(claim.job.id, claim.job.claim_token, {})
        else:
            await store.fail_attempt(claim.job.id, claim.job.claim_token, "x", None)
    clock.advance(8 * 86400)
    await add_uploaded(store, clock, "recent")
    claim = await store.claim_job()
    assert claim is not None
    await store.fail_attempt(claim.job.id, claim.job.claim_token, "x", None)
    cutoff = clock() - 7 * 86400
    assert await store.failed_before(cutoff, "alice") == ["old"]
    assert await store.failed_before(cutoff) == ["old", "old-bob"]  # completed ones never qualify
    left = {r.id for r in (await store.list_recordings("alice")).items}
    assert left == {"old", "done", "recent"}  # listing forgets nothing: the upload's deletion does


async def test_group_commit_batches_concurrent_operations_and_isolates_a_failure(
    sqlite_store: SQLiteRecordingStore, clock: FakeClock, tmp_path: Path
) -> None:
    """Operations that arrive together share one transaction (fewer hops and COMMITs), yet
    each succeeds or fails alone, and every result is durable once it is delivered. SQLite only:
    the group commit is that store's (sqlite_batches.py)."""
    store = sqlite_store
    await add(store, clock, "known")
    transactions = store._batches.transaction
    commits: list[int] = []  # batch sizes, observed (the real transaction still runs)

    def counting(batch: list[Any], **how: Any) -> Any:
        commits.append(len(batch))
        return transactions(batch, **how)

    store._batches.transaction = counting  # type: ignore[method-assign]
    results = await asyncio.gather(
        *(store.create_recording(new(f"r{n}", at=clock())) for n in range(20)),
        store.mark_uploaded("missing"),  # raises RecordingNotFound inside the batch
        store.mark_uploaded("known", 100),
        return_exceptions=True,
    )
    assert [r.id for r in results[:20] if isinstance(r, Recording)] == [f"r{n}" for n in range(20)]
    assert isinstance(results[20], RecordingNotFound)
    assert isinstance(results[21], tuple) and results[21][1] is True  # its job was enqueued
    assert sum(commits) == 22 and len(commits) < 22  # batched: fewer transactions than operations
    await store.close()  # durable: a fresh connection sees every successful operation
    reopened = SQLiteRecordingStore(store.path, clock=clock)
    await reopened.open()
    try:
        assert (await reopened.get_recording("r19")).status is Status.RECORDED
        assert (await reopened.get_recording("known")).status is Status.UPLOADED
        with pytest.raises(RecordingNotFound):
            await reopened.get_recording("missing")
    finally:
        await reopened.close()
