"""The store's rules, written once: what each change does inside its one transaction.

Every function here is a coroutine over a :class:`~tusd_py.pipeline.tables.Tables` (a dialect's
statements, bound to one connection), so SQLite and PostgreSQL apply the same rules: the final
offset and length of a finished upload, which job status goes with which event (through
:func:`~tusd_py.pipeline.states.transition` and :func:`~tusd_py.pipeline.states.job_transition`,
the recording and its job in the same transaction), the claim token a report must carry, the
fresh round of a retry, and the bound on the claim loop. A dialect may still replace a whole
script by one statement (PostgreSQL's hot paths, :mod:`~tusd_py.pipeline.postgres_statements`)
that applies the same tables with :func:`~tusd_py.pipeline.states.moves`, and falls back here
when that statement finds something unusual.

PostgreSQL awaits these scripts on the event loop; SQLite runs them on its store thread with
:func:`run_to_end`, since its statements never suspend.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Coroutine, Sequence
from typing import Any, TypeVar

import structlog

from tusd_py.pipeline.models import Claim, Job, JobStatus, OutboxEvent, Page, Recording, StatusTotals, StorageStats
from tusd_py.pipeline.rows import Row, job_from, recording_from
from tusd_py.pipeline.states import UPLOAD_COMPLETE, Event, IllegalTransition, Status, job_transition, transition
from tusd_py.pipeline.store import EVERYONE, OwnerFilter, RecordingNotFound, encode_cursor
from tusd_py.pipeline.tables import ClaimRound, Tables

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: Claim rounds per ``claim_job`` at most: each claims, finds nothing, or buries a job whose
#: recording refused the claim (then the next one is looked at).
MAX_CLAIM_ROUNDS = 100


def run_to_end(script: Coroutine[Any, Any, T]) -> T:
    """Run a script whose statements never suspend (SQLite's) to its end, on this thread."""
    try:
        script.send(None)
    except StopIteration as end:
        result: T = end.value
        return result
    script.close()
    raise RuntimeError("a store script suspended where no event loop runs it")


# -- the column changes (pure) -------------------------------------------------------------------


def recording_change(row: Row, event: Event, now: float, **fields: object) -> dict[str, object]:
    """The columns ``event`` sets on a recording: ``fields``, the status the table gives, the time."""
    return {**fields, "status": transition(Status(row["status"]), event).value, "updated_at": now}


def job_change(t: Tables, job: Row, event: Event, now: float, **fields: object) -> dict[str, object]:
    """The columns ``event`` sets on a job; leaving ``running`` ends its lease (lease stores)."""
    status = job_transition(JobStatus(job["status"]), event)
    if t.leases and status is not JobStatus.RUNNING:
        fields["lease_until"] = None
    return {**fields, "status": status.value, "updated_at": now}


def finished_sizes(offset: int | None, row: Row) -> tuple[int, int]:
    """A finished upload's final offset (the one reported, else its length; never below what was
    stored) and its length (a deferred length is known once the upload is complete: the offset)."""
    final = max(offset if offset is not None else (row["length"] or 0), row["offset"])
    return final, row["length"] if row["length"] is not None else final


# -- recordings ----------------------------------------------------------------------------------


async def create(t: Tables, recording: Recording, events: Sequence[OutboxEvent]) -> Recording:
    await t.insert_events(events)
    row = await t.insert_recording(recording)
    return recording_from(row if row is not None else await t.load(recording.id, lock=False))


async def progress(
    t: Tables, upload_id: str, offset: int, events: Sequence[OutboxEvent], now: float
) -> Recording | None:
    """None: no such recording (the events are written all the same: the progress happened)."""
    await t.insert_events(events)
    try:
        row = await t.load(upload_id)
    except RecordingNotFound:
        return None
    if Status(row["status"]) not in UPLOAD_COMPLETE and offset > 0:
        offset = max(offset, row["offset"])  # offsets only grow
        await t.update_recording(upload_id, recording_change(row, Event.BYTES_RECEIVED, now, offset=offset))
    return recording_from(await t.load(upload_id, lock=False))


async def finish(
    t: Tables, upload_id: str, offset: int | None, events: Sequence[OutboxEvent], now: float, job_id: str
) -> tuple[Recording, bool]:
    row = await t.load(upload_id)  # RecordingNotFound rolls the events back: the caller adopts and retries
    await t.insert_events(events)
    if Status(row["status"]) in UPLOAD_COMPLETE:
        return recording_from(row), False  # finishing again after a crash: nothing to do
    inserted = await t.insert_job(job_id, upload_id, now)
    if not inserted:  # a job survived from an earlier life of this id; keep the one that exists
        job_id = (await t.job_of(upload_id))["id"]
    final, length = finished_sizes(offset, row)
    change = recording_change(
        row, Event.UPLOAD_FINISHED, now, offset=final, length=length, uploaded_at=now, job_id=job_id
    )
    await t.update_recording(upload_id, change)
    if inserted:
        await t.jobs_queued()
    return recording_from(await t.load(upload_id, lock=False)), inserted


async def delete(t: Tables, upload_id: str, events: Sequence[OutboxEvent]) -> bool:
    await t.insert_events(events)
    return await t.delete_recording(upload_id)


async def get(t: Tables, upload_id: str, owner: OwnerFilter) -> Recording:
    row = await t.load(upload_id, lock=False)
    if owner is not EVERYONE and row["owner"] != owner:
        raise RecordingNotFound(upload_id)  # someone else's: indistinguishable from absent
    return recording_from(row)


async def page(
    t: Tables, owner: str | None, statuses: Sequence[str] | None, limit: int, after: tuple[float, str] | None
) -> Page:
    if statuses is not None and not statuses:
        return Page(items=[])
    rows = await t.page(owner, statuses, limit + 1, after)  # one extra row tells whether another page exists
    items = [recording_from(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None)


async def stats(t: Tables, owner: str | None) -> StorageStats:
    by_status = {status: StatusTotals() for status in Status}
    for status, count, size in await t.totals(owner):
        by_status[Status(status)] = StatusTotals(count=int(count), bytes=int(size))
    return StorageStats(
        owner=owner,
        by_status=by_status,
        total_count=sum(totals.count for totals in by_status.values()),
        total_bytes=sum(totals.bytes for totals in by_status.values()),
    )


# -- jobs ----------------------------------------------------------------------------------------


async def jobs(t: Tables, owner: OwnerFilter, statuses: Collection[str], limit: int) -> list[Job]:
    if not statuses:
        return []
    return [job_from(row) for row in await t.job_rows(owner, list(statuses), limit)]


async def claim_found(t: Tables, job: Row, now: float, claimant: str | None, lease_until: float) -> ClaimRound:
    """A claim round statement by statement, for a dialect without a one-statement claim: claim
    ``job`` (a due one, just read), then move its recording if the table lets it."""
    fields: dict[str, object] = {
        "attempts": job["attempts"] + 1, "claimed_at": now, "claim_token": job["claim_token"] + 1,
    }  # fmt: skip
    if t.leases:
        fields.update(claimed_by=claimant, lease_until=lease_until)
    await t.update_job(job["id"], job_change(t, job, Event.JOB_CLAIMED, now, **fields))
    rec = await t.load(job["upload_id"])
    try:
        change = recording_change(rec, Event.JOB_CLAIMED, now, attempts=rec["attempts"] + 1)
    except IllegalTransition:
        return await t.job_of(job["upload_id"]), None
    await t.update_recording(rec["id"], change)
    return await t.job_of(job["upload_id"]), await t.load(rec["id"], lock=False)


def claimed(found: ClaimRound) -> Claim | None:
    """A claim round's job and recording as a :class:`Claim`; None if the recording refused it."""
    job, rec = found
    return None if rec is None else Claim(job=job_from(job), recording=recording_from(rec))


async def claim(
    t: Tables, now: float, claimant: str | None, lease_until: float, first: ClaimRound | None = None
) -> Claim | None:
    """The next due job, claimed with its recording; a job whose recording refuses the claim
    (cannot happen while both change together; data edited by hand) is buried so it cannot
    block the queue. At most :data:`MAX_CLAIM_ROUNDS` rounds; ``first``: the first round's
    answer, already had (a completion that claimed the next job with it)."""
    for _ in range(MAX_CLAIM_ROUNDS):
        found, first = first or await t.claim_round(now, claimant, lease_until), None
        if found is None:
            return None
        job, _ = found
        claim = claimed(found)
        if claim is not None:
            return claim
        status = await t.recording_status(job["upload_id"])
        error = str(IllegalTransition(Status(status), Event.JOB_CLAIMED)) if status else "recording missing"
        log.error("job does not match its recording", job_id=job["id"], error=error)
        buried = job_change(t, job, Event.JOB_FAILED, now, last_error=error)
        await t.update_job(job["id"], buried, claim_token=job["claim_token"])
    return None


async def report(
    t: Tables,
    job_id: str,
    claim_token: int,
    event: Event,
    events: Sequence[OutboxEvent],
    now: float,
    *,
    recording: dict[str, object],
    job: dict[str, object],
) -> bool:
    """A worker's report: applied to the job and its recording only under the current claim
    (else False, and ``events`` are not written: the claim that is current will report)."""
    current = await t.current_claim(job_id, claim_token)
    if current is None:
        return False
    await t.insert_events(events)
    rec = await t.load(current["upload_id"])
    await t.update_recording(rec["id"], recording_change(rec, event, now, **recording))
    await t.update_job(job_id, job_change(t, current, event, now, **job))
    return True


async def complete(
    t: Tables, job_id: str, claim_token: int, results: str, events: Sequence[OutboxEvent], now: float
) -> bool:
    done: dict[str, object] = {"results": results, "completed_at": now, "last_error": None}
    event = Event.JOB_SUCCEEDED
    return await report(t, job_id, claim_token, event, events, now, recording=done, job={"last_error": None})


async def fail(
    t: Tables,
    job_id: str,
    claim_token: int,
    error: str,
    retry_in: float | None,
    events: Sequence[OutboxEvent],
    now: float,
) -> bool:
    """``retry_in`` None: the attempts are used up (``job_failed``); else ``attempt_failed``, due again then."""
    event = Event.JOB_FAILED if retry_in is None else Event.ATTEMPT_FAILED
    job = {"not_before": now + (retry_in or 0.0), "last_error": error}
    return await report(t, job_id, claim_token, event, events, now, recording={"last_error": error}, job=job)


async def requeue_running(t: Tables, owner: OwnerFilter, claimed_before: float | None, now: float) -> list[str]:
    running = await t.running_jobs(owner, claimed_before)
    for job in running:
        rec = await t.load(job["upload_id"])
        await t.update_recording(rec["id"], recording_change(rec, Event.REQUEUE, now))
        # The token bump orphans the old claim: if its worker is alive after all, its report is ignored.
        change = job_change(t, job, Event.REQUEUE, now, not_before=now, claim_token=job["claim_token"] + 1)
        await t.update_job(job["id"], change)
    return [job["upload_id"] for job in running]


async def retry(
    t: Tables, owner: str | None, stuck_before: float | None, now: float, new_id: Callable[[], str]
) -> list[str]:
    """``owner``'s failed recordings processed again (and, with ``stuck_before``, jobs running
    since before it requeued); ``new_id()`` names a job recreated for a recording that lost its own."""
    failed = await t.failed_recordings(owner)
    for rec in failed:
        # A failed recording always has its dead job; recreate it if it was lost all the same,
        # or the recording would sit in ``processing`` with nothing to process it.
        created = await t.insert_job(new_id(), rec["id"], now)
        job = await t.job_of(rec["id"])
        await t.update_recording(rec["id"], recording_change(rec, Event.RETRY, now, job_id=job["id"]))
        if not created:
            # A fresh round: attempts restart so the round gets the whole backoff schedule again.
            await t.update_job(job["id"], job_change(t, job, Event.RETRY, now, attempts=0, not_before=now))
    stuck = [] if stuck_before is None else await requeue_running(t, owner, stuck_before, now)
    ids = [rec["id"] for rec in failed] + stuck
    if ids:
        await t.jobs_queued()
    return ids
