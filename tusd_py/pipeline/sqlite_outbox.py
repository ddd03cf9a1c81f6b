"""The SQLite statements of the hook outbox (durable webhooks), mixed into ``SQLiteTables``.

:meth:`~SQLiteOutboxTables.insert_events` runs in the transaction that records the change an event
reports, so an event exists exactly when its change does. The others are the deliverer's: claim
due rows under a lease, then delete (delivered) or reschedule (failed) a row only while holding
that lease, so two instances never deliver one row at the same time and a crashed instance's rows
come back when its lease ends. The rules around them are :class:`~tusd_py.pipeline.sql_store.SQLRecordingStore`'s.

Each of the deliverer's statements reads through an index (``sqlite_schema``: ``hook_outbox_*``)
and touches a bounded number of rows, so a backlog (a receiver down for hours) costs each round
the same few statements, not a scan of the table. Only :meth:`~SQLiteOutboxTables.count_events`
counts every row; it runs per metrics scrape, never per delivery round. Like every SQLite
statement of the store, these run on the store's thread and never suspend.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from tusd_py.pipeline.models import OutboxEvent
from tusd_py.pipeline.rows import OUTBOX_COLUMNS, outbox_event_from, outbox_params


class SQLiteOutboxTables:
    conn: sqlite3.Connection

    async def insert_events(self, events: Sequence[OutboxEvent]) -> None:
        # OR IGNORE: an event written twice (a retried transaction) stays one row, one delivery.
        self.conn.executemany(
            f"INSERT OR IGNORE INTO hook_outbox ({OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [outbox_params(e) for e in events],
        )

    async def claim_events(self, holder: str, now: float, lease_until: float, limit: int) -> list[OutboxEvent]:
        rows = self.conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM hook_outbox WHERE not_before <= ? AND lease_until <= ?"
            " ORDER BY not_before, created_at LIMIT ?",
            (now, now, limit),
        ).fetchall()
        self.conn.executemany(
            "UPDATE hook_outbox SET lease_holder = ?, lease_until = ?, attempts = attempts + 1"
            " WHERE event_id = ? AND target = ?",
            [(holder, lease_until, row["event_id"], row["target"]) for row in rows],
        )
        claimed = [outbox_event_from(row) for row in rows]
        for event in claimed:
            event.attempts += 1
        return claimed

    async def delete_event(self, event_id: str, target: str, holder: str) -> bool:
        return (
            self.conn.execute(
                "DELETE FROM hook_outbox WHERE event_id = ? AND target = ? AND lease_holder = ?",
                (event_id, target, holder),
            ).rowcount
            > 0
        )

    async def reschedule_event(self, event_id: str, target: str, holder: str, retry_at: float, error: str) -> bool:
        return (
            self.conn.execute(
                "UPDATE hook_outbox SET not_before = ?, last_error = ?, lease_holder = NULL, lease_until = 0"
                " WHERE event_id = ? AND target = ? AND lease_holder = ?",
                (retry_at, error, event_id, target, holder),
            ).rowcount
            > 0
        )

    async def release_events(self, holder: str) -> int:
        return self.conn.execute(
            "UPDATE hook_outbox SET lease_holder = NULL, lease_until = 0 WHERE lease_holder = ?", (holder,)
        ).rowcount

    async def drop_events(self, cutoff: float, now: float, limit: int) -> list[OutboxEvent]:
        rows = self.conn.execute(
            "DELETE FROM hook_outbox WHERE rowid IN (SELECT rowid FROM hook_outbox"
            " WHERE created_at < ? AND lease_until <= ? ORDER BY created_at LIMIT ?)"
            f" RETURNING {OUTBOX_COLUMNS}",
            (cutoff, now, limit),
        ).fetchall()
        return [outbox_event_from(row) for row in rows]

    async def next_event_due(self) -> float | None:
        # The expression is hook_outbox_next's, so this reads one index entry, not the table.
        row = self.conn.execute("SELECT MIN(MAX(not_before, lease_until)) FROM hook_outbox").fetchone()
        return None if row[0] is None else float(row[0])

    async def count_events(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM hook_outbox").fetchone()[0])

    async def pending_events(self, limit: int) -> list[OutboxEvent]:
        rows = self.conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM hook_outbox ORDER BY created_at LIMIT ?", (limit,)
        ).fetchall()
        return [outbox_event_from(row) for row in rows]
