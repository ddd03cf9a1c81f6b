"""The shared :class:`RecordingStore`: PostgreSQL, for several tusd-py processes and instances.

Same tables and guarantees as the SQLite store (:mod:`tusd_py.pipeline.sqlite_store`), with what
many claimants need besides:

* a job is claimed with ``FOR UPDATE SKIP LOCKED``, so concurrent claimers never wait on each
  other nor take the same row, and with a lease (``claimed_by``, ``lease_until``). A ``running``
  job whose lease ran out is claimable like a due queued one: an instance that died (or froze)
  loses its jobs to the live ones within ``lease_seconds``, not at its next restart. The claim
  token grows with every claim, so a late report from the old claimant is ignored.
* enqueueing sends ``NOTIFY`` on :data:`JOB_CHANNEL` (delivered at commit), which wakes idle
  workers of every instance; they still poll as a bounded fallback.
* every status change goes through :func:`tusd_py.pipeline.states.transition` inside the same
  transaction as the job row it concerns, so a recording and its job never disagree.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

import asyncpg
import msgspec
import structlog

from tusd_py.database.connection import Conn, Database
from tusd_py.pipeline import postgres_outbox as outbox
from tusd_py.pipeline.models import (
    Claim,
    Job,
    JobStatus,
    OutboxEvent,
    Page,
    QueueDepth,
    Recording,
    StatusTotals,
    StorageStats,
)
from tusd_py.pipeline.postgres_outbox import PostgresOutbox
from tusd_py.pipeline.postgres_statements import (
    CLAIM,
    CLAIM_FROM,
    CLAIM_TO,
    COMPLETE,
    COMPLETE_FROM,
    COMPLETE_TO,
    CREATE,
    FINISH,
    FINISH_FROM,
    FINISH_TO,
    NEXT_DUE,
)
from tusd_py.pipeline.rows import job_from, recording_from
from tusd_py.pipeline.states import UPLOAD_COMPLETE, Event, IllegalTransition, Status, transition
from tusd_py.pipeline.store import (
    EVERYONE,
    LIVE_JOBS,
    OwnerFilter,
    RecordingNotFound,
    RecordingStore,
    check_page_size,
    decode_cursor,
    encode_cursor,
    queue_depth_from,
)

log = structlog.get_logger(__name__)

JOB_CHANNEL = "tusd_py_jobs"
_NO_HINT = object()  # next_due: no claim has said when the next job is due since it was last asked
_JOB_SELECT = "SELECT j.*, r.owner AS owner FROM jobs j JOIN recordings r ON r.id = j.upload_id"
_RUNNING, _QUEUED = JobStatus.RUNNING.value, JobStatus.QUEUED.value
_DONE, _DEAD = JobStatus.DONE.value, JobStatus.DEAD.value


def instance_name() -> str:
    """Who holds a lease, for operators reading the jobs table: host, pid and a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def _load(conn: Conn, upload_id: str, *, lock: bool = True) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM recordings WHERE id = $1" + (" FOR UPDATE" if lock else ""), upload_id)
    if row is None:
        raise RecordingNotFound(upload_id)
    return row


async def _set_status(conn: Conn, row: asyncpg.Record, event: Event, now: float, **fields: Any) -> None:
    """Apply ``event`` through the transition table, plus other column changes (one UPDATE)."""
    fields["status"] = transition(Status(row["status"]), event).value
    fields["updated_at"] = now
    names = list(fields)
    assignments = ", ".join(f'"{name}" = ${n}' for n, name in enumerate(names, start=2))
    await conn.execute(f"UPDATE recordings SET {assignments} WHERE id = $1", row["id"], *fields.values())


def _owner_clause(owner: OwnerFilter, column: str, param: int) -> tuple[str, tuple[object, ...]]:
    # IS NOT DISTINCT FROM: uploads made with auth off have a NULL owner and must still match.
    if owner is EVERYONE:
        return "TRUE", ()
    return f"{column} IS NOT DISTINCT FROM ${param}", (owner,)


class PostgresRecordingStore(PostgresOutbox, RecordingStore):
    uses_leases = True

    def __init__(
        self,
        database: Database,
        *,
        lease_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        instance: str | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.database = database
        self.lease_seconds = lease_seconds
        self.instance = instance or instance_name()
        self._clock = clock
        self._wake: list[Callable[[], None]] = []
        self._open = False
        self._due_hint: float | object | None = _NO_HINT

    async def open(self) -> None:
        if self._open:
            return
        await self.database.open()
        self._open = True
        for callback in self._wake:
            self.database.listen(JOB_CHANNEL, callback)
        log.info("recording store opened", database="postgresql", instance=self.instance)

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self.database.close()

    def on_job_available(self, callback: Callable[[], None]) -> None:
        self._wake.append(callback)
        if self._open:
            self.database.listen(JOB_CHANNEL, callback)

    @staticmethod
    async def _notify(conn: Conn) -> None:
        await conn.execute("SELECT pg_notify($1, '')", JOB_CHANNEL)

    # -- recordings ------------------------------------------------------------------------------

    async def create_recording(self, recording: Recording, events: Sequence[OutboxEvent] = ()) -> Recording:
        rec = recording
        values = (
            rec.id, rec.owner, rec.status.value, rec.mode, rec.filename, rec.length, rec.offset,
            rec.created_at, rec.updated_at,
        )  # fmt: skip
        # Without events: one statement in autocommit (the row, or the one that already exists).
        session = self.database.transaction() if events else self.database.connection()
        async with session as conn:
            await outbox.insert(conn, events)
            row = await conn.fetchrow(CREATE, *values)
            return recording_from(row if row is not None else await _load(conn, rec.id, lock=False))

    async def report_progress(self, upload_id: str, offset: int, events: Sequence[OutboxEvent] = ()) -> Recording:
        async with self.database.transaction() as conn:
            await outbox.insert(conn, events)
            row = await conn.fetchrow("SELECT * FROM recordings WHERE id = $1 FOR UPDATE", upload_id)
            if row is not None and Status(row["status"]) not in UPLOAD_COMPLETE and offset > 0:
                await _set_status(conn, row, Event.BYTES_RECEIVED, self._clock(), offset=max(offset, row["offset"]))
            fresh = None if row is None else await _load(conn, upload_id, lock=False)
        if fresh is None:  # raised after the commit: the events are kept all the same
            raise RecordingNotFound(upload_id)
        return recording_from(fresh)

    async def mark_uploaded(
        self, upload_id: str, offset: int | None = None, events: Sequence[OutboxEvent] = ()
    ) -> tuple[Recording, bool]:
        self._forget_due()
        if not events:  # the usual case: one statement; anything unusual takes the path below
            async with self.database.connection() as conn:
                now = self._clock()
                row = await conn.fetchrow(
                    FINISH, upload_id, offset, now, uuid.uuid4().hex, list(FINISH_FROM), FINISH_TO.value, JOB_CHANNEL
                )
            if row is not None:
                return recording_from(row), bool(row["inserted"])
        async with self.database.transaction() as conn:
            row = await _load(conn, upload_id)  # FOR UPDATE: concurrent finishes queue here; missing: no events
            await outbox.insert(conn, events)
            if Status(row["status"]) in UPLOAD_COMPLETE:
                return recording_from(row), False
            now = self._clock()
            inserted = await conn.fetchval(
                "INSERT INTO jobs (id, upload_id, status, not_before, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $4, $4) ON CONFLICT (upload_id) DO NOTHING RETURNING id",
                uuid.uuid4().hex, upload_id, _QUEUED, now,
            )  # fmt: skip
            # None: a job survived from an earlier life of this id; keep the one that exists.
            job_id = inserted or await conn.fetchval("SELECT id FROM jobs WHERE upload_id = $1", upload_id)
            final = max(offset if offset is not None else (row["length"] or 0), row["offset"])
            length = row["length"] if row["length"] is not None else final
            await _set_status(
                conn, row, Event.UPLOAD_FINISHED, now, offset=final, length=length, uploaded_at=now, job_id=job_id
            )
            if inserted:
                await self._notify(conn)
            return recording_from(await _load(conn, upload_id, lock=False)), inserted is not None

    async def delete_recording(self, upload_id: str, events: Sequence[OutboxEvent] = ()) -> bool:
        self._forget_due()
        async with self.database.transaction() as conn:
            await outbox.insert(conn, events)
            # Job row first, then the recording: the order the claim and the reports lock them in,
            # so a termination racing a worker's report waits instead of deadlocking.
            await conn.execute("SELECT id FROM jobs WHERE upload_id = $1 FOR UPDATE", upload_id)
            return bool(await conn.fetchval("DELETE FROM recordings WHERE id = $1 RETURNING TRUE", upload_id))

    async def get_recording(self, upload_id: str, owner: OwnerFilter = EVERYONE) -> Recording:
        async with self.database.connection() as conn:
            row = await _load(conn, upload_id, lock=False)
        if owner is not EVERYONE and row["owner"] != owner:
            raise RecordingNotFound(upload_id)
        return recording_from(row)

    async def list_recordings(
        self,
        owner: str | None,
        *,
        statuses: Collection[Status] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        check_page_size(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        where = ["owner IS NOT DISTINCT FROM $1"]
        params: list[object] = [owner]
        if statuses is not None:
            if not statuses:
                return Page(items=[])
            params.append([Status(s).value for s in statuses])
            where.append(f"status = ANY(${len(params)}::text[])")
        if after is not None:
            params.extend(after)
            n = len(params)
            where.append(f"(created_at < ${n - 1} OR (created_at = ${n - 1} AND id < ${n}))")
        params.append(limit + 1)  # one extra row tells whether another page exists
        async with self.database.connection() as conn:
            rows = await conn.fetch(
                f"SELECT * FROM recordings WHERE {' AND '.join(where)}"
                f" ORDER BY created_at DESC, id DESC LIMIT ${len(params)}",
                *params,
            )
        items = [recording_from(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None)

    async def stats(self, owner: str | None) -> StorageStats:
        by_status = {status: StatusTotals() for status in Status}
        async with self.database.connection() as conn:
            rows = await conn.fetch(
                'SELECT status, COUNT(*) AS n, COALESCE(SUM("offset"), 0) AS size FROM recordings'
                " WHERE owner IS NOT DISTINCT FROM $1 GROUP BY status",
                owner,
            )
        for row in rows:
            by_status[Status(row["status"])] = StatusTotals(count=row["n"], bytes=int(row["size"]))
        return StorageStats(
            owner=owner,
            by_status=by_status,
            total_count=sum(t.count for t in by_status.values()),
            total_bytes=sum(t.bytes for t in by_status.values()),
        )

    async def not_yet_uploaded(self, after: str, limit: int) -> list[str]:
        async with self.database.connection() as conn:
            rows = await conn.fetch(
                "SELECT id FROM recordings WHERE status = ANY($1::text[]) AND id > $2 ORDER BY id LIMIT $3",
                [Status.RECORDED.value, Status.UPLOADING.value], after, limit,
            )  # fmt: skip
        return [row["id"] for row in rows]

    async def failed_before(self, cutoff: float, owner: OwnerFilter = EVERYONE) -> list[str]:
        clause, params = _owner_clause(owner, "owner", 3)
        async with self.database.connection() as conn:
            rows = await conn.fetch(
                f"SELECT id FROM recordings WHERE status = $1 AND updated_at < $2 AND {clause} ORDER BY id",
                Status.FAILED.value, cutoff, *params,
            )  # fmt: skip
        return [row["id"] for row in rows]

    # -- jobs ------------------------------------------------------------------------------------

    async def list_jobs(
        self,
        owner: OwnerFilter = EVERYONE,
        statuses: Collection[JobStatus] = (JobStatus.QUEUED, JobStatus.RUNNING),
        limit: int = 100,
    ) -> list[Job]:
        check_page_size(limit)
        wanted = [JobStatus(s).value for s in statuses]
        if not wanted:
            return []
        clause, params = _owner_clause(owner, "r.owner", 3)
        async with self.database.connection() as conn:
            rows = await conn.fetch(
                f"{_JOB_SELECT} WHERE j.status = ANY($1::text[]) AND {clause}"
                " ORDER BY j.not_before, j.created_at LIMIT $2",
                wanted, limit, *params,
            )  # fmt: skip
        return [job_from(row) for row in rows]

    async def queue_depth(self) -> QueueDepth:
        async with self.database.connection() as conn:
            rows = await conn.fetch(
                "SELECT status, COUNT(*), MIN(created_at) FROM jobs WHERE status = ANY($1::text[]) GROUP BY status",
                [status.value for status in LIVE_JOBS],
            )
        return queue_depth_from([tuple(row) for row in rows])

    async def claim_job(self) -> Claim | None:
        """One statement: the due job and its recording, both changed; none due: when one will be."""
        self._forget_due()
        for _ in range(100):  # bounded: each round either claims, finds nothing, or buries a bad row
            now = self._clock()
            async with self.database.connection() as conn:
                row = await conn.fetchrow(
                    CLAIM, _QUEUED, _RUNNING, now, self.instance, now + self.lease_seconds,
                    list(CLAIM_FROM), CLAIM_TO.value,
                )  # fmt: skip
                assert row is not None  # the statement always answers one row
                if row["job"] is None:
                    self._due_hint = None if row["due"] is None else float(row["due"])
                    return None
                job = msgspec.json.decode(row["job"])
                if row["rec"] is not None:
                    rec = msgspec.json.decode(row["rec"])
                    return Claim(job=job_from({**job, "owner": rec["owner"]}), recording=recording_from(rec))
                # The job was claimed but its recording is in no status a claim may follow: bury it.
                status = await conn.fetchval("SELECT status FROM recordings WHERE id = $1", job["upload_id"])
                error = str(IllegalTransition(Status(status), Event.JOB_CLAIMED)) if status else "recording missing"
                log.error("job does not match its recording", job_id=job["id"], error=error)
                await conn.execute(
                    "UPDATE jobs SET status = $2, last_error = $3, updated_at = $4 WHERE id = $1 AND claim_token = $5",
                    job["id"], _DEAD, error, now, job["claim_token"],
                )  # fmt: skip
        return None

    def _forget_due(self) -> None:
        """A change to the jobs here (or another claim) makes the last empty claim's answer old."""
        self._due_hint = _NO_HINT

    async def next_due(self) -> float | None:
        hint, self._due_hint = self._due_hint, _NO_HINT
        if hint is not _NO_HINT:  # the claim that just found nothing said when the next job is due
            return hint  # type: ignore[return-value]
        async with self.database.connection() as conn:
            due = await conn.fetchval(f"SELECT {NEXT_DUE}", _QUEUED, _RUNNING)
        return None if due is None else float(due)

    async def renew_lease(self, job_id: str, claim_token: int) -> bool:
        self._forget_due()
        async with self.database.connection() as conn:
            renewed = await conn.fetchval(
                "UPDATE jobs SET lease_until = $4 WHERE id = $1 AND status = $2 AND claim_token = $3 RETURNING TRUE",
                job_id, _RUNNING, claim_token, self._clock() + self.lease_seconds,
            )  # fmt: skip
        return bool(renewed)

    @staticmethod
    async def _current_claim(conn: Conn, job_id: str, token: int) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT * FROM jobs WHERE id = $1 AND status = $2 AND claim_token = $3 FOR UPDATE", job_id, _RUNNING, token
        )
        return row

    async def complete_job(
        self, job_id: str, claim_token: int, results: dict[str, Any], events: Sequence[OutboxEvent] = ()
    ) -> bool:
        self._forget_due()
        encoded = msgspec.json.encode(results).decode("utf-8")  # fail here, in the caller, if not JSON
        if not events:  # the usual case: one statement; a refusal is looked at on the path below
            async with self.database.connection() as conn:
                done = await conn.fetchval(
                    COMPLETE, job_id, claim_token, _RUNNING, _DONE, self._clock(), encoded,
                    list(COMPLETE_FROM), COMPLETE_TO.value,
                )  # fmt: skip
            if done:
                return True
        async with self.database.transaction() as conn:
            job = await self._current_claim(conn, job_id, claim_token)
            if job is None:
                return False
            await outbox.insert(conn, events)
            now = self._clock()
            await _set_status(
                conn, await _load(conn, job["upload_id"]), Event.JOB_SUCCEEDED, now,
                results=encoded, completed_at=now, last_error=None,
            )  # fmt: skip
            await conn.execute(
                "UPDATE jobs SET status = $2, updated_at = $3, last_error = NULL, lease_until = NULL WHERE id = $1",
                job_id, _DONE, now,
            )  # fmt: skip
            return True

    async def fail_attempt(
        self, job_id: str, claim_token: int, error: str, retry_in: float | None, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        self._forget_due()
        async with self.database.transaction() as conn:
            job = await self._current_claim(conn, job_id, claim_token)
            if job is None:
                return False
            await outbox.insert(conn, events)
            now = self._clock()
            event = Event.JOB_FAILED if retry_in is None else Event.ATTEMPT_FAILED
            await _set_status(conn, await _load(conn, job["upload_id"]), event, now, last_error=error)
            status = _DEAD if retry_in is None else _QUEUED
            await conn.execute(
                "UPDATE jobs SET status = $2, not_before = $3, last_error = $4, updated_at = $5, lease_until = NULL"
                " WHERE id = $1",
                job_id, status, now + (retry_in or 0.0), error, now,
            )  # fmt: skip
            return True

    async def recover_running(self) -> list[str]:
        return []  # other instances may be running these jobs right now; expired leases are claimed instead

    async def _requeue_running(self, conn: Conn, owner: OwnerFilter, claimed_before: float) -> list[str]:
        clause, params = _owner_clause(owner, "r.owner", 3)
        rows = await conn.fetch(
            f"SELECT j.id, j.upload_id FROM jobs j JOIN recordings r ON r.id = j.upload_id"
            f" WHERE j.status = $1 AND j.claimed_at < $2 AND {clause} ORDER BY j.created_at FOR UPDATE OF j",
            _RUNNING, claimed_before, *params,
        )  # fmt: skip
        now = self._clock()
        for row in rows:
            await _set_status(conn, await _load(conn, row["upload_id"]), Event.REQUEUE, now)
            # The token bump orphans the old claim: if its worker is alive after all, its report is ignored.
            await conn.execute(
                "UPDATE jobs SET status = $2, not_before = $3, claim_token = claim_token + 1, updated_at = $3,"
                " lease_until = NULL WHERE id = $1",
                row["id"], _QUEUED, now,
            )  # fmt: skip
        return [row["upload_id"] for row in rows]

    async def retry(self, owner: str | None, stuck_before: float | None = None) -> list[str]:
        self._forget_due()
        async with self.database.transaction() as conn:
            now = self._clock()
            failed = await conn.fetch(
                "SELECT * FROM recordings WHERE owner IS NOT DISTINCT FROM $1 AND status = $2"
                " ORDER BY created_at, id FOR UPDATE",
                owner, Status.FAILED.value,
            )  # fmt: skip
            for rec in failed:
                # A failed recording always has its dead job; recreate it if it was lost all the same.
                await conn.execute(
                    "INSERT INTO jobs (id, upload_id, status, not_before, created_at, updated_at)"
                    " VALUES ($1, $2, $3, $4, $4, $4) ON CONFLICT (upload_id) DO NOTHING",
                    uuid.uuid4().hex, rec["id"], _QUEUED, now,
                )  # fmt: skip
                job_id = await conn.fetchval("SELECT id FROM jobs WHERE upload_id = $1", rec["id"])
                await _set_status(conn, rec, Event.RETRY, now, job_id=job_id)
                # A fresh round: attempts restart so the round gets the whole backoff schedule again.
                await conn.execute(
                    "UPDATE jobs SET status = $2, attempts = 0, not_before = $3, updated_at = $3 WHERE id = $1",
                    job_id, _QUEUED, now,
                )  # fmt: skip
            stuck = [] if stuck_before is None else await self._requeue_running(conn, owner, stuck_before)
            ids = [rec["id"] for rec in failed] + stuck
            if ids:
                await self._notify(conn)
            return ids
