"""SQLite's statements for the store: :class:`SQLiteTables`, the ``Tables`` of one connection.

Only SQL lives here; the rules are :mod:`tusd_py.pipeline.transactions`'. Every method runs on the
store's one thread inside the transaction it opened (``BEGIN IMMEDIATE`` for writers, which
serialises them, so nothing is locked row by row) and never suspends. The tables are
:mod:`tusd_py.pipeline.sqlite_schema`'s. One process claims jobs without a lease; a file shared by
the workers of ``--processes N`` claims them with one (``leases``, :mod:`~tusd_py.pipeline.sqlite_leases`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from tusd_py.pipeline import sqlite_leases, transactions
from tusd_py.pipeline.models import Recording
from tusd_py.pipeline.sqlite_outbox import SQLiteOutboxTables
from tusd_py.pipeline.states import NEW_JOB, JobStatus, Status
from tusd_py.pipeline.store import EVERYONE, LIVE_JOBS, OwnerFilter, RecordingNotFound
from tusd_py.pipeline.tables import ClaimRound

JOB_COLUMNS = "j.*, r.owner AS owner"
_JOB_SELECT = f"SELECT {JOB_COLUMNS} FROM jobs j JOIN recordings r ON r.id = j.upload_id"
_RUNNING = JobStatus.RUNNING.value


def owner_clause(owner: OwnerFilter, column: str = "owner") -> tuple[str, tuple[object, ...]]:
    # ``IS`` rather than ``=``: uploads made with auth off have a NULL owner and must still match.
    if owner is EVERYONE:
        return "1", ()
    return f"{column} IS ?", (owner,)


def _assignments(fields: Mapping[str, object]) -> str:
    return ", ".join(f"{name} = ?" for name in fields)


class SQLiteTables(SQLiteOutboxTables):
    def __init__(self, conn: sqlite3.Connection, *, leases: bool = False) -> None:
        self.conn = conn
        self.leases = leases

    # -- recordings ------------------------------------------------------------------------------

    async def insert_recording(self, recording: Recording) -> sqlite3.Row | None:
        rec = recording
        row: sqlite3.Row | None = self.conn.execute(
            "INSERT OR IGNORE INTO recordings (id, owner, status, mode, filename, length, offset,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (rec.id, rec.owner, rec.status.value, rec.mode, rec.filename, rec.length, rec.offset,
             rec.created_at, rec.updated_at),
        ).fetchone()  # fmt: skip
        return row

    async def load(self, upload_id: str, *, lock: bool = True) -> sqlite3.Row:
        row: sqlite3.Row | None = self.conn.execute("SELECT * FROM recordings WHERE id = ?", (upload_id,)).fetchone()
        if row is None:
            raise RecordingNotFound(upload_id)
        return row

    async def recording_status(self, upload_id: str) -> str | None:
        row = self.conn.execute("SELECT status FROM recordings WHERE id = ?", (upload_id,)).fetchone()
        return None if row is None else str(row[0])

    async def update_recording(self, upload_id: str, fields: Mapping[str, object]) -> None:
        self.conn.execute(f"UPDATE recordings SET {_assignments(fields)} WHERE id = ?", (*fields.values(), upload_id))

    async def delete_recording(self, upload_id: str) -> bool:
        self.conn.execute("DELETE FROM jobs WHERE upload_id = ?", (upload_id,))
        return self.conn.execute("DELETE FROM recordings WHERE id = ?", (upload_id,)).rowcount > 0

    async def page(
        self, owner: str | None, statuses: Sequence[str] | None, limit: int, after: tuple[float, str] | None
    ) -> list[sqlite3.Row]:
        where: list[str] = ["owner IS ?"]
        params: list[object] = [owner]
        if statuses is not None:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        if after is not None:
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params.extend([after[0], after[0], after[1]])
        return self.conn.execute(
            f"SELECT * FROM recordings WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        ).fetchall()

    async def totals(self, owner: str | None) -> list[tuple[Any, ...]]:
        rows = self.conn.execute(
            "SELECT status, COUNT(*), COALESCE(SUM(offset), 0) FROM recordings WHERE owner IS ? GROUP BY status",
            (owner,),
        )
        return [tuple(row) for row in rows]

    async def not_yet_uploaded(self, after: str, limit: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT id FROM recordings WHERE status IN (?, ?) AND id > ? ORDER BY id LIMIT ?",
            (Status.RECORDED.value, Status.UPLOADING.value, after, limit),
        )
        return [row[0] for row in rows]

    async def failed_before(self, cutoff: float, owner: OwnerFilter) -> list[str]:
        clause, params = owner_clause(owner)
        rows = self.conn.execute(
            f"SELECT id FROM recordings WHERE status = ? AND updated_at < ? AND {clause} ORDER BY id",
            (Status.FAILED.value, cutoff, *params),
        )
        return [row[0] for row in rows]

    async def failed_recordings(self, owner: str | None) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM recordings WHERE owner IS ? AND status = ? ORDER BY created_at, id",
            (owner, Status.FAILED.value),
        ).fetchall()

    # -- jobs ------------------------------------------------------------------------------------

    async def insert_job(self, job_id: str, upload_id: str, now: float) -> bool:
        inserted = self.conn.execute(
            "INSERT OR IGNORE INTO jobs (id, upload_id, status, not_before, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, upload_id, NEW_JOB.value, now, now, now),
        ).rowcount
        return bool(inserted)

    async def job_of(self, upload_id: str) -> sqlite3.Row:
        row: sqlite3.Row = self.conn.execute(f"{_JOB_SELECT} WHERE j.upload_id = ?", (upload_id,)).fetchone()
        return row

    async def current_claim(self, job_id: str, claim_token: int) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM jobs WHERE id = ? AND status = ? AND claim_token = ?", (job_id, _RUNNING, claim_token)
        ).fetchone()
        return row

    async def update_job(self, job_id: str, fields: Mapping[str, object], *, claim_token: int | None = None) -> None:
        token = "" if claim_token is None else " AND claim_token = ?"
        self.conn.execute(
            f"UPDATE jobs SET {_assignments(fields)} WHERE id = ?{token}",
            (*fields.values(), job_id, *(() if claim_token is None else (claim_token,))),
        )

    async def claim_round(self, now: float, claimant: str | None, lease_until: float) -> ClaimRound | None:
        job = sqlite_leases.expired(self.conn, now, JOB_COLUMNS) if self.leases else None
        job = (
            job
            or self.conn.execute(
                f"{_JOB_SELECT} WHERE j.status = ? AND j.not_before <= ? ORDER BY j.not_before, j.created_at LIMIT 1",
                (JobStatus.QUEUED.value, now),
            ).fetchone()
        )
        if job is None:
            return None
        return await transactions.claim_found(self, job, now, claimant, lease_until)

    async def renew_lease(self, job_id: str, claim_token: int, lease_until: float) -> bool:
        if self.leases:
            return sqlite_leases.renew(self.conn, job_id, claim_token, lease_until)
        # One process, no lease: the claim lasts until this process reports or restarts.
        return await self.current_claim(job_id, claim_token) is not None

    async def next_job_due(self) -> float | None:
        if self.leases:
            return sqlite_leases.next_due(self.conn)
        row = self.conn.execute("SELECT MIN(not_before) FROM jobs WHERE status = ?", (JobStatus.QUEUED.value,))
        row = row.fetchone()
        return None if row[0] is None else float(row[0])

    async def running_jobs(self, owner: OwnerFilter, claimed_before: float | None) -> list[sqlite3.Row]:
        clause, params = owner_clause(owner, "r.owner")
        since = "" if claimed_before is None else " AND j.claimed_at < ?"
        return self.conn.execute(
            f"SELECT j.* FROM jobs j JOIN recordings r ON r.id = j.upload_id"
            f" WHERE j.status = ? AND {clause}{since} ORDER BY j.created_at",
            (_RUNNING, *params, *(() if claimed_before is None else (claimed_before,))),
        ).fetchall()

    async def job_rows(self, owner: OwnerFilter, statuses: Sequence[str], limit: int) -> list[sqlite3.Row]:
        clause, params = owner_clause(owner, "r.owner")
        return self.conn.execute(
            f"{_JOB_SELECT} WHERE j.status IN ({', '.join('?' * len(statuses))}) AND {clause}"
            " ORDER BY j.not_before, j.created_at LIMIT ?",
            (*statuses, *params, limit),
        ).fetchall()

    async def queue_counts(self) -> list[tuple[Any, ...]]:
        rows = self.conn.execute(
            "SELECT status, COUNT(*), MIN(created_at) FROM jobs WHERE status IN (?, ?) GROUP BY status",
            [status.value for status in LIVE_JOBS],
        ).fetchall()
        return [tuple(row) for row in rows]

    async def jobs_queued(self) -> None:
        """Nothing to tell: one process, whose pipeline wakes its own workers."""
