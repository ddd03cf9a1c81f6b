"""Job leases on the SQLite store, for one state file shared by the workers of ``--processes N``.

One process alone needs no lease: a job left ``running`` by a crash is requeued at the next start
(``recover_running``). Several processes on one file cannot do that (a worker restarting would
requeue the jobs its siblings are running), so the shared store works like PostgreSQL's: a claim
records its holder and ``lease_until`` (``transactions.claim_found``, as on PostgreSQL), the worker
renews it every third of the lease while the steps run, and a ``running`` job whose lease ran out is
claimable again by any worker, with a new claim token, so the dead worker's late report is ignored
(``_current_claim`` compares tokens).

Every write runs in the store's ``BEGIN IMMEDIATE`` transaction, which SQLite serialises across
processes (WAL, ``busy_timeout``): two workers never claim one job. The statements read through
``jobs_leases`` (status, lease_until), so finding an expired lease never scans the table.
"""

from __future__ import annotations

import sqlite3

from tusd_py.pipeline.models import JobStatus

_RUNNING = JobStatus.RUNNING.value
_QUEUED = JobStatus.QUEUED.value


def migrate(conn: sqlite3.Connection) -> None:
    """Add the lease columns and their index to a database made before them (schema 4). Several
    workers open the file at once: the check and the change are one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        if "lease_until" not in columns:
            conn.execute("ALTER TABLE jobs ADD COLUMN lease_until REAL")
        if "claimed_by" not in columns:
            conn.execute("ALTER TABLE jobs ADD COLUMN claimed_by TEXT")
        conn.execute("CREATE INDEX IF NOT EXISTS jobs_leases ON jobs (status, lease_until)")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def expired(conn: sqlite3.Connection, now: float, columns: str) -> sqlite3.Row | None:
    """A running job whose holder's lease ran out (its worker died or hung), oldest lease first."""
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {columns} FROM jobs j JOIN recordings r ON r.id = j.upload_id"
        " WHERE j.status = ? AND j.lease_until <= ? ORDER BY j.lease_until LIMIT 1",
        (_RUNNING, now),
    ).fetchone()
    return row


def renew(conn: sqlite3.Connection, job_id: str, token: int, until: float) -> bool:
    """Extend the lease if the claim is still this one (same token, still running)."""
    cursor = conn.execute(
        "UPDATE jobs SET lease_until = ? WHERE id = ? AND status = ? AND claim_token = ?",
        (until, job_id, _RUNNING, token),
    )
    return cursor.rowcount == 1


def next_due(conn: sqlite3.Connection) -> float | None:
    """The earliest moment a job can be claimed: a queued job due, or a lease running out."""
    row = conn.execute(
        "SELECT MIN(t) FROM (SELECT MIN(not_before) AS t FROM jobs WHERE status = ?"
        " UNION ALL SELECT MIN(lease_until) FROM jobs WHERE status = ?)",
        (_QUEUED, _RUNNING),
    ).fetchone()
    return None if row[0] is None else float(row[0])
