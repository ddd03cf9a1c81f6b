"""The default :class:`RecordingStore`: one SQLite database file, in WAL mode.

sqlite3 blocks, so every statement runs on one dedicated thread that owns the only connection.
That serialises this process's transactions (no "database is locked" between our own coroutines)
and keeps the event loop free. Writers use ``BEGIN IMMEDIATE`` so that if a second process opens
the same file, a read-then-write (claiming a job) cannot interleave with another claim.

Operations that queue while the thread is busy share one transaction (group commit, see
:mod:`tusd_py.pipeline.sqlite_batches`): one savepoint each, results delivered after the COMMIT.

WAL lets readers (listing, stats) proceed while a writer commits; ``synchronous=NORMAL`` in WAL
mode keeps the database consistent across crashes and loses at most the last commits on power
loss, the same durability the filesystem backend gives upload bytes without ``fsync``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import structlog

from tusd_py.pipeline import sqlite_leases as leases
from tusd_py.pipeline import sqlite_outbox as outbox
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
from tusd_py.pipeline.sqlite_batches import GroupCommit
from tusd_py.pipeline.sqlite_schema import (
    JOB_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    job_from,
    load,
    owner_clause,
    recording_from,
    set_status,
)
from tusd_py.pipeline.states import UPLOAD_COMPLETE, Event, IllegalTransition, Status
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

T = TypeVar("T")


class SQLiteRecordingStore(RecordingStore):
    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 5000,
        lease_seconds: float | None = None,
    ) -> None:
        """``lease_seconds``: the file is shared by several processes (``--processes N``), so jobs
        are claimed with a lease of that length (:mod:`tusd_py.pipeline.sqlite_leases`)."""
        self.path = Path(path)
        if lease_seconds is not None:
            self.uses_leases = True
            self.lease_seconds = lease_seconds
        self._holder = uuid.uuid4().hex
        self._clock = clock
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batches = GroupCommit(lambda: self._conn)

    # -- plumbing --------------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        if self._executor is None:
            raise RuntimeError("store is not open")
        return await self._batches.run(self._executor, fn, args, write)

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so each method is one transaction.
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(SCHEMA)
        leases.migrate(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._conn = conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline-sqlite")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        log.info("recording store opened", path=str(self.path))

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        executor.shutdown(wait=False)

    # -- recordings ------------------------------------------------------------------------------

    async def create_recording(self, recording: Recording, events: Sequence[OutboxEvent] = ()) -> Recording:
        return await self._run(self._create, recording, events)

    def _create(self, conn: sqlite3.Connection, rec: Recording, events: Sequence[OutboxEvent]) -> Recording:
        outbox.insert(conn, events)
        conn.execute(
            "INSERT OR IGNORE INTO recordings (id, owner, status, mode, filename, length, offset,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec.id, rec.owner, rec.status.value, rec.mode, rec.filename, rec.length, rec.offset,
             rec.created_at, rec.updated_at),
        )  # fmt: skip
        return recording_from(load(conn, rec.id))

    async def report_progress(self, upload_id: str, offset: int, events: Sequence[OutboxEvent] = ()) -> Recording:
        recording = await self._run(self._progress, upload_id, offset, events)
        if recording is None:  # raised here, after the commit: the events are kept all the same
            raise RecordingNotFound(upload_id)
        return recording

    def _progress(
        self, conn: sqlite3.Connection, upload_id: str, offset: int, events: Sequence[OutboxEvent]
    ) -> Recording | None:
        outbox.insert(conn, events)
        try:
            row = load(conn, upload_id)
        except RecordingNotFound:
            return None
        if Status(row["status"]) not in UPLOAD_COMPLETE and offset > 0:
            set_status(conn, row, Event.BYTES_RECEIVED, self._clock(), offset=max(offset, row["offset"]))
        return recording_from(load(conn, upload_id))

    async def mark_uploaded(
        self, upload_id: str, offset: int | None = None, events: Sequence[OutboxEvent] = ()
    ) -> tuple[Recording, bool]:
        return await self._run(self._uploaded, upload_id, offset, events)

    def _uploaded(
        self, conn: sqlite3.Connection, upload_id: str, offset: int | None, events: Sequence[OutboxEvent]
    ) -> tuple[Recording, bool]:
        row = load(conn, upload_id)  # RecordingNotFound rolls the events back: the caller adopts and retries
        outbox.insert(conn, events)
        if Status(row["status"]) in UPLOAD_COMPLETE:
            return recording_from(row), False
        now = self._clock()
        job_id = uuid.uuid4().hex
        inserted = conn.execute(
            "INSERT OR IGNORE INTO jobs (id, upload_id, status, not_before, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, upload_id, JobStatus.QUEUED.value, now, now, now),
        ).rowcount
        if not inserted:  # a job survived from an earlier life of this id; keep the one that exists
            job_id = conn.execute("SELECT id FROM jobs WHERE upload_id = ?", (upload_id,)).fetchone()[0]
        final = max(offset if offset is not None else (row["length"] or 0), row["offset"])
        # A deferred length is known once the upload is complete: it is the final offset.
        length = row["length"] if row["length"] is not None else final
        set_status(conn, row, Event.UPLOAD_FINISHED, now, offset=final, length=length, uploaded_at=now, job_id=job_id)
        return recording_from(load(conn, upload_id)), bool(inserted)

    async def delete_recording(self, upload_id: str, events: Sequence[OutboxEvent] = ()) -> bool:
        return await self._run(self._delete, upload_id, events)

    def _delete(self, conn: sqlite3.Connection, upload_id: str, events: Sequence[OutboxEvent] = ()) -> bool:
        outbox.insert(conn, events)
        conn.execute("DELETE FROM jobs WHERE upload_id = ?", (upload_id,))
        return conn.execute("DELETE FROM recordings WHERE id = ?", (upload_id,)).rowcount > 0

    async def get_recording(self, upload_id: str, owner: OwnerFilter = EVERYONE) -> Recording:
        return await self._run(self._get, upload_id, owner, write=False)

    def _get(self, conn: sqlite3.Connection, upload_id: str, owner: OwnerFilter) -> Recording:
        row = load(conn, upload_id)
        if owner is not EVERYONE and row["owner"] != owner:
            raise RecordingNotFound(upload_id)  # someone else's: indistinguishable from absent
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
        wanted = None if statuses is None else [Status(s).value for s in statuses]
        return await self._run(self._list, owner, wanted, limit, after, write=False)

    def _list(
        self,
        conn: sqlite3.Connection,
        owner: str | None,
        statuses: list[str] | None,
        limit: int,
        after: tuple[float, str] | None,
    ) -> Page:
        where: list[str] = ["owner IS ?"]
        params: list[object] = [owner]
        if statuses is not None:
            if not statuses:
                return Page(items=[])
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        if after is not None:
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params.extend([after[0], after[0], after[1]])
        rows = conn.execute(
            f"SELECT * FROM recordings WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit + 1),  # one extra row tells whether another page exists
        ).fetchall()
        items = [recording_from(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None)

    async def stats(self, owner: str | None) -> StorageStats:
        return await self._run(self._stats, owner, write=False)

    def _stats(self, conn: sqlite3.Connection, owner: str | None) -> StorageStats:
        by_status = {status: StatusTotals() for status in Status}
        rows = conn.execute(
            "SELECT status, COUNT(*), COALESCE(SUM(offset), 0) FROM recordings WHERE owner IS ? GROUP BY status",
            (owner,),
        )
        for status, count, size in rows:
            by_status[Status(status)] = StatusTotals(count=count, bytes=size)
        return StorageStats(
            owner=owner,
            by_status=by_status,
            total_count=sum(t.count for t in by_status.values()),
            total_bytes=sum(t.bytes for t in by_status.values()),
        )

    async def not_yet_uploaded(self, after: str, limit: int) -> list[str]:
        return await self._run(self._not_yet_uploaded, after, limit, write=False)

    def _not_yet_uploaded(self, conn: sqlite3.Connection, after: str, limit: int) -> list[str]:
        rows = conn.execute(
            "SELECT id FROM recordings WHERE status IN (?, ?) AND id > ? ORDER BY id LIMIT ?",
            (Status.RECORDED.value, Status.UPLOADING.value, after, limit),
        )
        return [row[0] for row in rows]

    async def failed_before(self, cutoff: float, owner: OwnerFilter = EVERYONE) -> list[str]:
        return await self._run(self._failed_before, cutoff, owner, write=False)

    def _failed_before(self, conn: sqlite3.Connection, cutoff: float, owner: OwnerFilter) -> list[str]:
        clause, params = owner_clause(owner)
        return [
            row[0]
            for row in conn.execute(
                f"SELECT id FROM recordings WHERE status = ? AND updated_at < ? AND {clause} ORDER BY id",
                (Status.FAILED.value, cutoff, *params),
            )
        ]

    # -- jobs ------------------------------------------------------------------------------------

    async def list_jobs(
        self,
        owner: OwnerFilter = EVERYONE,
        statuses: Collection[JobStatus] = (JobStatus.QUEUED, JobStatus.RUNNING),
        limit: int = 100,
    ) -> list[Job]:
        check_page_size(limit)
        wanted = [JobStatus(s).value for s in statuses]
        return await self._run(self._list_jobs, owner, wanted, limit, write=False)

    def _list_jobs(self, conn: sqlite3.Connection, owner: OwnerFilter, statuses: list[str], limit: int) -> list[Job]:
        if not statuses:
            return []
        clause, params = owner_clause(owner, "r.owner")
        rows = conn.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs j JOIN recordings r ON r.id = j.upload_id"
            f" WHERE j.status IN ({', '.join('?' * len(statuses))}) AND {clause}"
            " ORDER BY j.not_before, j.created_at LIMIT ?",
            (*statuses, *params, limit),
        )
        return [job_from(row) for row in rows]

    async def queue_depth(self) -> QueueDepth:
        return await self._run(self._queue_depth, write=False)

    def _queue_depth(self, conn: sqlite3.Connection) -> QueueDepth:
        rows = conn.execute(
            "SELECT status, COUNT(*), MIN(created_at) FROM jobs WHERE status IN (?, ?) GROUP BY status",
            [status.value for status in LIVE_JOBS],
        ).fetchall()
        return queue_depth_from([tuple(row) for row in rows])

    async def claim_job(self) -> Claim | None:
        return await self._run(self._claim)

    def _claim(self, conn: sqlite3.Connection) -> Claim | None:
        now = self._clock()
        while True:
            row = leases.expired(conn, now, JOB_COLUMNS) if self.uses_leases else None
            row = (
                row
                or conn.execute(
                    f"SELECT {JOB_COLUMNS} FROM jobs j JOIN recordings r ON r.id = j.upload_id"
                    " WHERE j.status = ? AND j.not_before <= ? ORDER BY j.not_before, j.created_at LIMIT 1",
                    (JobStatus.QUEUED.value, now),
                ).fetchone()
            )
            if row is None:
                return None
            rec = load(conn, row["upload_id"])
            try:
                set_status(conn, rec, Event.JOB_CLAIMED, now, attempts=rec["attempts"] + 1)
            except IllegalTransition as exc:
                # Cannot happen while recording and job change in one transaction; if the data
                # was edited by hand, bury the job instead of blocking the queue behind it.
                log.error("job does not match its recording", job_id=row["id"], error=str(exc))
                conn.execute(
                    "UPDATE jobs SET status = ?, last_error = ?, updated_at = ? WHERE id = ?",
                    (JobStatus.DEAD.value, str(exc), now, row["id"]),
                )
                continue
            conn.execute(
                "UPDATE jobs SET status = ?, attempts = attempts + 1, claimed_at = ?,"
                " claim_token = claim_token + 1, updated_at = ? WHERE id = ?",
                (JobStatus.RUNNING.value, now, now, row["id"]),
            )
            if self.uses_leases:
                leases.hold(conn, row["id"], self._holder, now + self.lease_seconds)
            job = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs j JOIN recordings r ON r.id = j.upload_id WHERE j.id = ?",
                (row["id"],),
            ).fetchone()
            return Claim(job=job_from(job), recording=recording_from(load(conn, row["upload_id"])))

    async def next_due(self) -> float | None:
        return await self._run(self._next_due, write=False)

    def _next_due(self, conn: sqlite3.Connection) -> float | None:
        if self.uses_leases:
            return leases.next_due(conn)
        row = conn.execute("SELECT MIN(not_before) FROM jobs WHERE status = ?", (JobStatus.QUEUED.value,)).fetchone()
        return None if row[0] is None else float(row[0])

    def _current_claim(self, conn: sqlite3.Connection, job_id: str, token: int) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM jobs WHERE id = ? AND status = ? AND claim_token = ?",
            (job_id, JobStatus.RUNNING.value, token),
        ).fetchone()
        return row

    async def renew_lease(self, job_id: str, claim_token: int) -> bool:
        if self.uses_leases:
            until = self._clock() + self.lease_seconds
            return await self._run(lambda conn: leases.renew(conn, job_id, claim_token, until))
        # One process, no lease: the claim lasts until this process reports or restarts.
        return await self._run(lambda conn: self._current_claim(conn, job_id, claim_token) is not None, write=False)

    async def complete_job(
        self, job_id: str, claim_token: int, results: dict[str, Any], events: Sequence[OutboxEvent] = ()
    ) -> bool:
        encoded = msgspec.json.encode(results).decode("utf-8")  # fail here, in the caller, if not JSON
        return await self._run(self._complete, job_id, claim_token, encoded, events)

    def _complete(
        self, conn: sqlite3.Connection, job_id: str, token: int, results: str, events: Sequence[OutboxEvent]
    ) -> bool:
        job = self._current_claim(conn, job_id, token)
        if job is None:
            return False
        outbox.insert(conn, events)
        now = self._clock()
        set_status(
            conn, load(conn, job["upload_id"]), Event.JOB_SUCCEEDED, now,
            results=results, completed_at=now, last_error=None,
        )  # fmt: skip
        conn.execute(
            "UPDATE jobs SET status = ?, updated_at = ?, last_error = NULL WHERE id = ?",
            (JobStatus.DONE.value, now, job_id),
        )
        return True

    async def fail_attempt(
        self, job_id: str, claim_token: int, error: str, retry_in: float | None, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._run(self._fail, job_id, claim_token, error, retry_in, events)

    def _fail(
        self,
        conn: sqlite3.Connection,
        job_id: str,
        token: int,
        error: str,
        retry_in: float | None,
        events: Sequence[OutboxEvent],
    ) -> bool:
        job = self._current_claim(conn, job_id, token)
        if job is None:
            return False
        outbox.insert(conn, events)
        now = self._clock()
        event = Event.JOB_FAILED if retry_in is None else Event.ATTEMPT_FAILED
        set_status(conn, load(conn, job["upload_id"]), event, now, last_error=error)
        status = JobStatus.DEAD if retry_in is None else JobStatus.QUEUED
        conn.execute(
            "UPDATE jobs SET status = ?, not_before = ?, last_error = ?, updated_at = ? WHERE id = ?",
            (status.value, now + (retry_in or 0.0), error, now, job_id),
        )
        return True

    async def recover_running(self) -> list[str]:
        return await self._run(self._requeue_running, EVERYONE, None)

    def _requeue_running(self, conn: sqlite3.Connection, owner: OwnerFilter, claimed_before: float | None) -> list[str]:
        clause, params = owner_clause(owner, "r.owner")
        since = "" if claimed_before is None else " AND j.claimed_at < ?"
        rows = conn.execute(
            f"SELECT j.id, j.upload_id FROM jobs j JOIN recordings r ON r.id = j.upload_id"
            f" WHERE j.status = ? AND {clause}{since} ORDER BY j.created_at",
            (JobStatus.RUNNING.value, *params, *(() if claimed_before is None else (claimed_before,))),
        ).fetchall()
        now = self._clock()
        for job_id, upload_id in rows:
            set_status(conn, load(conn, upload_id), Event.REQUEUE, now)
            # The token bump orphans the old claim: if its worker is alive after all, its report is ignored.
            conn.execute(
                "UPDATE jobs SET status = ?, not_before = ?, claim_token = claim_token + 1, updated_at = ?"
                " WHERE id = ?",
                (JobStatus.QUEUED.value, now, now, job_id),
            )
        return [upload_id for _, upload_id in rows]

    async def retry(self, owner: str | None, stuck_before: float | None = None) -> list[str]:
        return await self._run(self._retry, owner, stuck_before)

    def _retry(self, conn: sqlite3.Connection, owner: str | None, stuck_before: float | None) -> list[str]:
        now = self._clock()
        failed = conn.execute(
            "SELECT * FROM recordings WHERE owner IS ? AND status = ? ORDER BY created_at, id",
            (owner, Status.FAILED.value),
        ).fetchall()
        for rec in failed:
            # A failed recording always has its dead job; recreate it if it was lost all the same,
            # or the recording would sit in ``processing`` with nothing to process it.
            conn.execute(
                "INSERT OR IGNORE INTO jobs (id, upload_id, status, not_before, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (uuid.uuid4().hex, rec["id"], JobStatus.QUEUED.value, now, now, now),
            )
            job_id = conn.execute("SELECT id FROM jobs WHERE upload_id = ?", (rec["id"],)).fetchone()[0]
            set_status(conn, rec, Event.RETRY, now, job_id=job_id)
            # A fresh round: attempts restart so the round gets the whole backoff schedule again.
            conn.execute(
                "UPDATE jobs SET status = ?, attempts = 0, not_before = ?, updated_at = ? WHERE id = ?",
                (JobStatus.QUEUED.value, now, now, job_id),
            )
        stuck = [] if stuck_before is None else self._requeue_running(conn, owner, stuck_before)
        return [rec["id"] for rec in failed] + stuck

    # -- hook outbox -----------------------------------------------------------------------------

    async def enqueue_events(self, events: Sequence[OutboxEvent]) -> None:
        if events:
            await self._run(outbox.insert, events)

    async def claim_events(self, holder: str, lease_seconds: float, limit: int) -> list[OutboxEvent]:
        return await self._run(outbox.claim, holder, self._clock(), lease_seconds, limit)

    async def event_delivered(self, event_id: str, target: str, holder: str) -> bool:
        return await self._run(outbox.delivered, event_id, target, holder)

    async def event_failed(self, event_id: str, target: str, holder: str, error: str, retry_at: float | None) -> bool:
        return await self._run(outbox.failed, event_id, target, holder, error, retry_at)

    async def release_events(self, holder: str) -> int:
        return await self._run(outbox.release, holder)

    async def drop_events_before(self, cutoff: float, limit: int) -> list[OutboxEvent]:
        return await self._run(outbox.drop_created_before, cutoff, self._clock(), limit)

    async def next_event_due(self) -> float | None:
        return await self._run(outbox.next_due, write=False)

    async def count_events(self) -> int:
        return await self._run(outbox.size, write=False)

    async def pending_events(self, limit: int = 100) -> list[OutboxEvent]:
        return await self._run(outbox.pending, limit, write=False)
