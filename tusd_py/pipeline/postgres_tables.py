"""PostgreSQL's statements for the store: :class:`PostgresTables`, the ``Tables`` of one connection.

Only SQL lives here; the rules are :mod:`tusd_py.pipeline.transactions`'. Several instances write
at once, so a script locks the rows it will change (``FOR UPDATE``), jobs before recordings, the
order the one-statement claim and completion take (:mod:`~tusd_py.pipeline.postgres_statements`),
so two paths wait for each other instead of deadlocking. Jobs carry a lease.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg
import msgspec

from tusd_py.database.connection import Conn
from tusd_py.pipeline.models import Recording
from tusd_py.pipeline.postgres_outbox import PostgresOutboxTables
from tusd_py.pipeline.postgres_statements import CLAIM, CLAIM_FROM, CLAIM_TO, CREATE, NEXT_DUE
from tusd_py.pipeline.states import NEW_JOB, JobStatus, Status
from tusd_py.pipeline.store import EVERYONE, LIVE_JOBS, OwnerFilter, RecordingNotFound
from tusd_py.pipeline.tables import ClaimRound

#: NOTIFY channel of enqueued jobs (sent at commit): idle workers of every instance wake on it.
JOB_CHANNEL = "tusd_py_jobs"
_JOB_SELECT = "SELECT j.*, r.owner AS owner FROM jobs j JOIN recordings r ON r.id = j.upload_id"
_RUNNING, _QUEUED = JobStatus.RUNNING.value, JobStatus.QUEUED.value


def owner_clause(owner: OwnerFilter, column: str, param: int) -> tuple[str, tuple[object, ...]]:
    # IS NOT DISTINCT FROM: uploads made with auth off have a NULL owner and must still match.
    if owner is EVERYONE:
        return "TRUE", ()
    return f"{column} IS NOT DISTINCT FROM ${param}", (owner,)


def _assignments(fields: Mapping[str, object], first: int) -> str:
    return ", ".join(f'"{name}" = ${n}' for n, name in enumerate(fields, start=first))


def claim_round_from(row: asyncpg.Record, on_due: Callable[[float | None], None]) -> ClaimRound | None:
    """A claim's answer (``job``, ``rec`` and ``due`` columns, as CLAIM and COMPLETE_CLAIM give it):
    the claimed job and its recording, or None with ``on_due`` told when the next job is due."""
    if row["job"] is None:
        on_due(None if row["due"] is None else float(row["due"]))
        return None
    job = msgspec.json.decode(row["job"])
    if row["rec"] is None:  # the job is claimed, but its recording is in no status a claim may follow
        return job, None
    rec = msgspec.json.decode(row["rec"])
    return {**job, "owner": rec["owner"]}, rec


class PostgresTables(PostgresOutboxTables):
    leases = True

    def __init__(self, conn: Conn, on_due: Callable[[float | None], None] = lambda due: None) -> None:
        self.conn = conn
        self._on_due = on_due  # a claim round that found nothing says when the next job is due

    # -- recordings ------------------------------------------------------------------------------

    async def insert_recording(self, recording: Recording) -> asyncpg.Record | None:
        rec = recording
        row: asyncpg.Record | None = await self.conn.fetchrow(
            CREATE, rec.id, rec.owner, rec.status.value, rec.mode, rec.filename, rec.length, rec.offset,
            rec.created_at, rec.updated_at,
        )  # fmt: skip
        return row

    async def load(self, upload_id: str, *, lock: bool = True) -> asyncpg.Record:
        row: asyncpg.Record | None = await self.conn.fetchrow(
            "SELECT * FROM recordings WHERE id = $1" + (" FOR UPDATE" if lock else ""), upload_id
        )
        if row is None:
            raise RecordingNotFound(upload_id)
        return row

    async def recording_status(self, upload_id: str) -> str | None:
        status = await self.conn.fetchval("SELECT status FROM recordings WHERE id = $1", upload_id)
        return None if status is None else str(status)

    async def update_recording(self, upload_id: str, fields: Mapping[str, object]) -> None:
        await self.conn.execute(
            f"UPDATE recordings SET {_assignments(fields, 2)} WHERE id = $1", upload_id, *fields.values()
        )

    async def delete_recording(self, upload_id: str) -> bool:
        # Job row first, then the recording: the order the claim and the reports lock them in,
        # so a termination racing a worker's report waits instead of deadlocking.
        await self.conn.execute("SELECT id FROM jobs WHERE upload_id = $1 FOR UPDATE", upload_id)
        return bool(await self.conn.fetchval("DELETE FROM recordings WHERE id = $1 RETURNING TRUE", upload_id))

    async def page(
        self, owner: str | None, statuses: Sequence[str] | None, limit: int, after: tuple[float, str] | None
    ) -> list[asyncpg.Record]:
        where = ["owner IS NOT DISTINCT FROM $1"]
        params: list[object] = [owner]
        if statuses is not None:
            params.append(list(statuses))
            where.append(f"status = ANY(${len(params)}::text[])")
        if after is not None:
            params.extend(after)
            n = len(params)
            where.append(f"(created_at < ${n - 1} OR (created_at = ${n - 1} AND id < ${n}))")
        params.append(limit)
        rows: list[asyncpg.Record] = await self.conn.fetch(
            f"SELECT * FROM recordings WHERE {' AND '.join(where)}"
            f" ORDER BY created_at DESC, id DESC LIMIT ${len(params)}",
            *params,
        )
        return rows

    async def totals(self, owner: str | None) -> list[tuple[Any, ...]]:
        rows = await self.conn.fetch(
            'SELECT status, COUNT(*) AS n, COALESCE(SUM("offset"), 0) AS size FROM recordings'
            " WHERE owner IS NOT DISTINCT FROM $1 GROUP BY status",
            owner,
        )
        return [tuple(row) for row in rows]

    async def not_yet_uploaded(self, after: str, limit: int) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT id FROM recordings WHERE status = ANY($1::text[]) AND id > $2 ORDER BY id LIMIT $3",
            [Status.RECORDED.value, Status.UPLOADING.value], after, limit,
        )  # fmt: skip
        return [row["id"] for row in rows]

    async def failed_before(self, cutoff: float, owner: OwnerFilter) -> list[str]:
        clause, params = owner_clause(owner, "owner", 3)
        rows = await self.conn.fetch(
            f"SELECT id FROM recordings WHERE status = $1 AND updated_at < $2 AND {clause} ORDER BY id",
            Status.FAILED.value, cutoff, *params,
        )  # fmt: skip
        return [row["id"] for row in rows]

    async def failed_recordings(self, owner: str | None) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT * FROM recordings WHERE owner IS NOT DISTINCT FROM $1 AND status = $2"
            " ORDER BY created_at, id FOR UPDATE",
            owner, Status.FAILED.value,
        )  # fmt: skip
        return rows

    # -- jobs ------------------------------------------------------------------------------------

    async def insert_job(self, job_id: str, upload_id: str, now: float) -> bool:
        inserted = await self.conn.fetchval(
            "INSERT INTO jobs (id, upload_id, status, not_before, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $4, $4) ON CONFLICT (upload_id) DO NOTHING RETURNING id",
            job_id, upload_id, NEW_JOB.value, now,
        )  # fmt: skip
        return inserted is not None

    async def job_of(self, upload_id: str) -> asyncpg.Record:
        row: asyncpg.Record | None = await self.conn.fetchrow(f"{_JOB_SELECT} WHERE j.upload_id = $1", upload_id)
        assert row is not None  # asked only in the transaction that found or inserted it
        return row

    async def current_claim(self, job_id: str, claim_token: int) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.conn.fetchrow(
            "SELECT * FROM jobs WHERE id = $1 AND status = $2 AND claim_token = $3 FOR UPDATE",
            job_id, _RUNNING, claim_token,
        )  # fmt: skip
        return row

    async def update_job(self, job_id: str, fields: Mapping[str, object], *, claim_token: int | None = None) -> None:
        token = "" if claim_token is None else f" AND claim_token = ${len(fields) + 2}"
        await self.conn.execute(
            f"UPDATE jobs SET {_assignments(fields, 2)} WHERE id = $1{token}",
            job_id, *fields.values(), *(() if claim_token is None else (claim_token,)),
        )  # fmt: skip

    async def claim_round(self, now: float, claimant: str | None, lease_until: float) -> ClaimRound | None:
        """One statement: the due job and its recording, both changed; none due: when one will be."""
        row = await self.conn.fetchrow(
            CLAIM, _QUEUED, _RUNNING, now, claimant, lease_until, list(CLAIM_FROM), CLAIM_TO.value
        )
        assert row is not None  # the statement always answers one row
        return claim_round_from(row, self._on_due)

    async def renew_lease(self, job_id: str, claim_token: int, lease_until: float) -> bool:
        renewed = await self.conn.fetchval(
            "UPDATE jobs SET lease_until = $4 WHERE id = $1 AND status = $2 AND claim_token = $3 RETURNING TRUE",
            job_id, _RUNNING, claim_token, lease_until,
        )  # fmt: skip
        return bool(renewed)

    async def next_job_due(self) -> float | None:
        due = await self.conn.fetchval(f"SELECT {NEXT_DUE}", _QUEUED, _RUNNING)
        return None if due is None else float(due)

    async def running_jobs(self, owner: OwnerFilter, claimed_before: float | None) -> list[asyncpg.Record]:
        clause, params = owner_clause(owner, "r.owner", 2)
        if claimed_before is not None:
            clause += f" AND j.claimed_at < ${2 + len(params)}"
            params += (claimed_before,)
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT j.* FROM jobs j JOIN recordings r ON r.id = j.upload_id"
            f" WHERE j.status = $1 AND {clause} ORDER BY j.created_at FOR UPDATE OF j",
            _RUNNING, *params,
        )  # fmt: skip
        return rows

    async def job_rows(self, owner: OwnerFilter, statuses: Sequence[str], limit: int) -> list[asyncpg.Record]:
        clause, params = owner_clause(owner, "r.owner", 3)
        rows: list[asyncpg.Record] = await self.conn.fetch(
            f"{_JOB_SELECT} WHERE j.status = ANY($1::text[]) AND {clause} ORDER BY j.not_before, j.created_at LIMIT $2",
            list(statuses), limit, *params,
        )  # fmt: skip
        return rows

    async def queue_counts(self) -> list[tuple[Any, ...]]:
        rows = await self.conn.fetch(
            "SELECT status, COUNT(*), MIN(created_at) FROM jobs WHERE status = ANY($1::text[]) GROUP BY status",
            [status.value for status in LIVE_JOBS],
        )
        return [tuple(row) for row in rows]

    async def jobs_queued(self) -> None:
        await self.conn.execute("SELECT pg_notify($1, '')", JOB_CHANNEL)
