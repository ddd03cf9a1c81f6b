"""The SQLite statements of the hook outbox (durable webhooks), run inside the store's transactions.

:func:`insert` is called by the recording store's own methods in the transaction that records the
change an event reports, so an event exists exactly when its change does. The other functions are
the deliverer's: claim due rows under a lease, then delete (delivered) or reschedule (failed) a row
only while holding that lease, so two instances never deliver one row at the same time and a
crashed instance's rows come back when its lease ends.

Each of the deliverer's statements reads through an index (``sqlite_schema``: ``hook_outbox_*``)
and touches a bounded number of rows, so a backlog (a receiver down for hours) costs each round
the same few statements, not a scan of the table. Only :func:`size` counts every row; it runs per
metrics scrape, never per delivery round.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from tusd_py.pipeline.models import OutboxEvent
from tusd_py.pipeline.rows import OUTBOX_COLUMNS, outbox_event_from, outbox_params


def insert(conn: sqlite3.Connection, events: Sequence[OutboxEvent]) -> None:
    # OR IGNORE: an event written twice (a retried transaction) stays one row, one delivery.
    conn.executemany(
        f"INSERT OR IGNORE INTO hook_outbox ({OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [outbox_params(e) for e in events],
    )


def claim(conn: sqlite3.Connection, holder: str, now: float, lease: float, limit: int) -> list[OutboxEvent]:
    rows = conn.execute(
        f"SELECT {OUTBOX_COLUMNS} FROM hook_outbox WHERE not_before <= ? AND lease_until <= ?"
        " ORDER BY not_before, created_at LIMIT ?",
        (now, now, limit),
    ).fetchall()
    conn.executemany(
        "UPDATE hook_outbox SET lease_holder = ?, lease_until = ?, attempts = attempts + 1"
        " WHERE event_id = ? AND target = ?",
        [(holder, now + lease, row["event_id"], row["target"]) for row in rows],
    )
    claimed = [outbox_event_from(row) for row in rows]
    for event in claimed:
        event.attempts += 1
    return claimed


def delivered(conn: sqlite3.Connection, event_id: str, target: str, holder: str) -> bool:
    return (
        conn.execute(
            "DELETE FROM hook_outbox WHERE event_id = ? AND target = ? AND lease_holder = ?",
            (event_id, target, holder),
        ).rowcount
        > 0
    )


def failed(
    conn: sqlite3.Connection, event_id: str, target: str, holder: str, error: str, retry_at: float | None
) -> bool:
    """Reschedule the row at ``retry_at``, or drop it when None (retention over, or not retryable)."""
    if retry_at is None:
        return delivered(conn, event_id, target, holder)
    return (
        conn.execute(
            "UPDATE hook_outbox SET not_before = ?, last_error = ?, lease_holder = NULL, lease_until = 0"
            " WHERE event_id = ? AND target = ? AND lease_holder = ?",
            (retry_at, error[:500], event_id, target, holder),
        ).rowcount
        > 0
    )


def release(conn: sqlite3.Connection, holder: str) -> int:
    return conn.execute(
        "UPDATE hook_outbox SET lease_holder = NULL, lease_until = 0 WHERE lease_holder = ?", (holder,)
    ).rowcount


def drop_created_before(conn: sqlite3.Connection, cutoff: float, now: float, limit: int) -> list[OutboxEvent]:
    """Remove up to ``limit`` of the oldest rows past the retention (not leased right now); return them."""
    rows = conn.execute(
        "DELETE FROM hook_outbox WHERE rowid IN (SELECT rowid FROM hook_outbox"
        " WHERE created_at < ? AND lease_until <= ? ORDER BY created_at LIMIT ?)"
        f" RETURNING {OUTBOX_COLUMNS}",
        (cutoff, now, limit),
    ).fetchall()
    return [outbox_event_from(row) for row in rows]


def next_due(conn: sqlite3.Connection) -> float | None:
    # The expression is hook_outbox_next's, so this reads one index entry, not the table.
    row = conn.execute("SELECT MIN(MAX(not_before, lease_until)) FROM hook_outbox").fetchone()
    return None if row[0] is None else float(row[0])


def size(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM hook_outbox").fetchone()[0])


def pending(conn: sqlite3.Connection, limit: int) -> list[OutboxEvent]:
    rows = conn.execute(f"SELECT {OUTBOX_COLUMNS} FROM hook_outbox ORDER BY created_at LIMIT ?", (limit,)).fetchall()
    return [outbox_event_from(row) for row in rows]
