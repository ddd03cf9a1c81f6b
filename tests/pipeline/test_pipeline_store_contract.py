"""The store's rules, the same on both stores: the ``store`` fixture runs each test on SQLite and on
a real PostgreSQL. Where PostgreSQL has a one-statement path (finish, completion) besides the shared
script, ``with_events`` runs both: events send it down the script.

The rules under test are written once (tusd_py/pipeline/transactions.py); these tests hold each
dialect's statements to them: the final offset and length, the job status each event leads to,
the claim token a report must carry, a retry's fresh round, the bound on the claim loop, and an
illegal job move refused by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tusd_py.pipeline.models import Job, JobStatus, OutboxEvent, Recording
from tusd_py.pipeline.postgres_store import PostgresRecordingStore
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore
from tusd_py.pipeline.states import IllegalTransition, Status
from tusd_py.pipeline.store import EVERYONE, RecordingStore
from tusd_py.pipeline.transactions import MAX_CLAIM_ROUNDS

if TYPE_CHECKING:  # the fixture's type; conftest is pytest's to import, never ours
    from conftest import FakeClock

with_events = pytest.mark.parametrize("with_events", [False, True], ids=["one statement", "script"])


def new(upload_id: str, at: float, length: int | None = 100) -> Recording:
    return Recording(id=upload_id, owner="alice", status=Status.RECORDED, length=length, created_at=at, updated_at=at)


def event(name: str, clock: FakeClock) -> list[OutboxEvent]:
    body = name.encode()
    return [
        OutboxEvent(
            event_id=name, target="t", hook="h", upload_id=None, body=body, created_at=clock(), not_before=clock()
        )
    ]


async def uploaded(store: RecordingStore, clock: FakeClock, upload_id: str) -> None:
    await store.create_recording(new(upload_id, clock()))
    await store.mark_uploaded(upload_id, 100)


async def edit(store: RecordingStore, sql: str) -> None:
    """Change the data by hand, as an operator might (literal SQL that both engines read alike)."""
    if isinstance(store, SQLiteRecordingStore):
        await store._run(lambda conn: conn.execute(sql))
        return
    assert isinstance(store, PostgresRecordingStore)
    async with store.database.connection() as conn:
        await conn.execute(sql)


async def job_of(store: RecordingStore, upload_id: str) -> Job:
    jobs = [
        job
        for job in await store.list_jobs(EVERYONE, statuses=list(JobStatus), limit=500)
        if job.upload_id == upload_id
    ]
    assert len(jobs) == 1, jobs
    return jobs[0]


@with_events
async def test_a_finished_upload_has_its_final_offset_and_length(
    store: RecordingStore, clock: FakeClock, with_events: bool
) -> None:
    cases = {
        # id: (declared length, stored offset, reported final offset) -> (offset, length)
        "deferred": ((None, 40, 70), (70, 70)),  # a deferred length is the final offset
        "declared": ((100, 30, None), (100, 100)),  # no offset reported: the declared length
        "behind": ((None, 50, 20), (50, 50)),  # a report below what was stored never shrinks it
        "empty": ((None, 0, None), (0, 0)),
    }
    for upload_id, ((length, stored, final), expected) in cases.items():
        await store.create_recording(new(upload_id, clock(), length))
        await store.report_progress(upload_id, stored)
        events = event(upload_id, clock) if with_events else []
        recording, enqueued = await store.mark_uploaded(upload_id, final, events)
        assert enqueued and recording.status is Status.UPLOADED
        assert (recording.offset, recording.length) == expected, upload_id
        again, enqueued = await store.mark_uploaded(upload_id, final + 5 if final else 5)
        assert not enqueued and (again.offset, again.length) == expected  # finishing again changes nothing


@with_events
async def test_each_event_moves_the_job_as_the_table_says(
    store: RecordingStore, clock: FakeClock, with_events: bool
) -> None:
    async def statuses() -> tuple[Status, JobStatus]:
        return (await store.get_recording("a")).status, (await job_of(store, "a")).status

    await uploaded(store, clock, "a")
    assert await statuses() == (Status.UPLOADED, JobStatus.QUEUED)
    claim = await store.claim_job()
    assert claim is not None and await statuses() == (Status.PROCESSING, JobStatus.RUNNING)
    assert await store.fail_attempt(claim.job.id, claim.job.claim_token, "once", 5.0)
    assert await statuses() == (Status.PROCESSING, JobStatus.QUEUED)
    assert await store.claim_job() is None  # its backoff
    clock.advance(5)
    claim = await store.claim_job()
    assert claim is not None and claim.job.attempts == 2 and claim.recording.attempts == 2
    assert await store.fail_attempt(claim.job.id, claim.job.claim_token, "twice", None)
    assert await statuses() == (Status.FAILED, JobStatus.DEAD)
    assert await store.retry("alice") == ["a"]
    assert await statuses() == (Status.PROCESSING, JobStatus.QUEUED)
    claim = await store.claim_job()
    assert claim is not None and claim.job.attempts == 1  # a retry is a fresh round
    assert claim.recording.attempts == 3  # the recording counts every attempt ever made
    events = event("done", clock) if with_events else []
    assert await store.complete_job(claim.job.id, claim.job.claim_token, {"digest": {"ok": True}}, events)
    assert await statuses() == (Status.COMPLETED, JobStatus.DONE)
    done = await store.get_recording("a")
    assert done.results == {"digest": {"ok": True}} and done.last_error is None and done.completed_at == clock()


@with_events
async def test_a_report_needs_the_current_claim(store: RecordingStore, clock: FakeClock, with_events: bool) -> None:
    await uploaded(store, clock, "a")
    old = await store.claim_job()
    assert old is not None
    clock.advance(10)
    assert await store.retry("alice", stuck_before=clock()) == ["a"]  # requeued under the old claimant
    assert (await job_of(store, "a")).status is JobStatus.QUEUED
    new_claim = await store.claim_job()
    assert new_claim is not None and new_claim.job.claim_token > old.job.claim_token + 1
    events = event("late", clock) if with_events else []
    assert not await store.complete_job(old.job.id, old.job.claim_token, {}, events)
    assert not await store.fail_attempt(old.job.id, old.job.claim_token, "late", None, events)
    assert not await store.renew_lease(old.job.id, old.job.claim_token)
    assert await store.count_events() == 0  # a refused report writes no events either
    assert await store.renew_lease(new_claim.job.id, new_claim.job.claim_token)
    assert await store.complete_job(new_claim.job.id, new_claim.job.claim_token, {}, events)
    assert (await store.get_recording("a")).status is Status.COMPLETED


async def test_a_job_whose_recording_refuses_the_claim_is_buried_by_name(
    store: RecordingStore, clock: FakeClock
) -> None:
    await uploaded(store, clock, "bad")
    clock.advance(1)
    await uploaded(store, clock, "good")
    await edit(store, "UPDATE recordings SET status = 'completed' WHERE id = 'bad'")
    claim = await store.claim_job()
    assert claim is not None and claim.recording.id == "good"
    buried = await job_of(store, "bad")
    assert buried.status is JobStatus.DEAD
    assert buried.last_error == "event 'job_claimed' is not allowed in status 'completed'"
    assert (await store.get_recording("bad")).status is Status.COMPLETED  # left as it was


async def test_the_claim_loop_gives_up_after_the_same_number_of_rounds(store: RecordingStore, clock: FakeClock) -> None:
    for n in range(MAX_CLAIM_ROUNDS + 1):
        await uploaded(store, clock, f"bad{n:03}")
    clock.advance(1)
    await uploaded(store, clock, "good")
    await edit(store, "UPDATE recordings SET status = 'completed' WHERE id LIKE 'bad%'")
    assert await store.claim_job() is None  # every round buried one: the loop stops, the next call goes on
    dead = await store.list_jobs(EVERYONE, statuses=[JobStatus.DEAD], limit=500)
    assert len(dead) == MAX_CLAIM_ROUNDS
    claim = await store.claim_job()
    assert claim is not None and claim.recording.id == "good"
    assert len(await store.list_jobs(EVERYONE, statuses=[JobStatus.DEAD], limit=500)) == MAX_CLAIM_ROUNDS + 1


async def test_an_illegal_job_move_is_refused_by_name_and_changes_nothing(
    store: RecordingStore, clock: FakeClock
) -> None:
    await uploaded(store, clock, "a")
    claim = await store.claim_job()
    assert claim is not None
    await store.fail_attempt(claim.job.id, claim.job.claim_token, "gave up", None)
    await edit(store, "UPDATE jobs SET status = 'done' WHERE upload_id = 'a'")  # a failed recording's job is dead
    with pytest.raises(IllegalTransition, match="event 'retry' is not allowed in a job in status 'done'"):
        await store.retry("alice")
    assert (await store.get_recording("a")).status is Status.FAILED
    assert (await job_of(store, "a")).status is JobStatus.DONE


async def test_a_retry_recreates_a_lost_job(store: RecordingStore, clock: FakeClock) -> None:
    await uploaded(store, clock, "a")
    claim = await store.claim_job()
    assert claim is not None
    await store.fail_attempt(claim.job.id, claim.job.claim_token, "gave up", None)
    await edit(store, "DELETE FROM jobs WHERE upload_id = 'a'")
    assert await store.retry("alice") == ["a"]
    job = await job_of(store, "a")
    recording = await store.get_recording("a")
    assert job.status is JobStatus.QUEUED and job.attempts == 0 and job.id != claim.job.id
    assert recording.status is Status.PROCESSING and recording.job_id == job.id
    again = await store.claim_job()
    assert again is not None and again.job.id == job.id
