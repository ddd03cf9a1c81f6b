"""The PostgreSQL statements of the hook outbox (durable webhooks), mixed into ``PostgresTables``.

:meth:`~PostgresOutboxTables.insert_events` runs inside the transaction that records the change an
event reports, so an event exists exactly when its change does. The deliverer's statements lease
rows with ``FOR UPDATE SKIP LOCKED`` (two instances never take one row; a crashed one's rows come
back when its lease ends) and change a row only while holding its lease. The rules around them
are :class:`~tusd_py.pipeline.sql_store.SQLRecordingStore`'s, as for SQLite
(:mod:`tusd_py.pipeline.sqlite_outbox`), and so are the indexes (migration 4): no statement of a
delivery round scans the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from tusd_py.database.connection import Conn
from tusd_py.pipeline.models import OutboxEvent
from tusd_py.pipeline.rows import OUTBOX_COLUMNS, outbox_event_from, outbox_params

# The rows of a batch, locked, by their physical address: the statement around it then reads exactly
# those (a Tid Scan), where ``(event_id, target) IN (...)`` let the planner hash-join over the whole
# table. A locked row cannot move before the statement that locked it ends.
_DUE = (
    "SELECT ctid FROM hook_outbox WHERE not_before <= $3 AND lease_until <= $3"
    " ORDER BY not_before, created_at LIMIT $4 FOR UPDATE SKIP LOCKED"
)


class PostgresOutboxTables:
    conn: Conn

    async def insert_events(self, events: Sequence[OutboxEvent]) -> None:
        if not events:
            return
        # ON CONFLICT DO NOTHING: an event written twice (a retried transaction) stays one row, one delivery.
        await self.conn.executemany(
            f"INSERT INTO hook_outbox ({OUTBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (event_id, target) DO NOTHING",
            [outbox_params(e) for e in events],
        )

    async def claim_events(self, holder: str, now: float, lease_until: float, limit: int) -> list[OutboxEvent]:
        rows = await self.conn.fetch(
            "UPDATE hook_outbox SET lease_holder = $1, lease_until = $2, attempts = attempts + 1"
            f" WHERE ctid = ANY(ARRAY({_DUE}))"
            f" RETURNING {OUTBOX_COLUMNS}",
            holder, lease_until, now, limit,
        )  # fmt: skip
        return [outbox_event_from(row) for row in rows]

    async def delete_event(self, event_id: str, target: str, holder: str) -> bool:
        done = await self.conn.fetchval(
            "DELETE FROM hook_outbox WHERE event_id = $1 AND target = $2 AND lease_holder = $3 RETURNING TRUE",
            event_id, target, holder,
        )  # fmt: skip
        return bool(done)

    async def reschedule_event(self, event_id: str, target: str, holder: str, retry_at: float, error: str) -> bool:
        done = await self.conn.fetchval(
            "UPDATE hook_outbox SET not_before = $4, last_error = $5, lease_holder = NULL, lease_until = 0"
            " WHERE event_id = $1 AND target = $2 AND lease_holder = $3 RETURNING TRUE",
            event_id, target, holder, retry_at, error,
        )  # fmt: skip
        return bool(done)

    async def release_events(self, holder: str) -> int:
        rows = await self.conn.fetch(
            "UPDATE hook_outbox SET lease_holder = NULL, lease_until = 0 WHERE lease_holder = $1 RETURNING 1", holder
        )
        return len(rows)

    async def drop_events(self, cutoff: float, now: float, limit: int) -> list[OutboxEvent]:
        rows = await self.conn.fetch(
            "DELETE FROM hook_outbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM hook_outbox"
            "  WHERE created_at < $1 AND lease_until <= $2 ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED))"
            f" RETURNING {OUTBOX_COLUMNS}",
            cutoff, now, limit,
        )  # fmt: skip
        return [outbox_event_from(row) for row in rows]

    async def next_event_due(self) -> float | None:
        due = await self.conn.fetchval("SELECT MIN(GREATEST(not_before, lease_until)) FROM hook_outbox")
        return None if due is None else float(due)

    async def count_events(self) -> int:
        return int(await self.conn.fetchval("SELECT COUNT(*) FROM hook_outbox"))

    async def pending_events(self, limit: int) -> list[OutboxEvent]:
        rows = await self.conn.fetch(f"SELECT {OUTBOX_COLUMNS} FROM hook_outbox ORDER BY created_at LIMIT $1", limit)
        return [outbox_event_from(row) for row in rows]
