"""Counting the SQL statements a store sends, on either engine, to pin statement budgets in tests.

SQLite: the connection's trace callback (set on the store's own thread, which owns the connection).
PostgreSQL: an asyncpg query logger on every connection the store takes from its pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from tusd_py.pipeline.postgres_store import PostgresRecordingStore
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore
from tusd_py.pipeline.store import RecordingStore


@contextlib.asynccontextmanager
async def statements(store: RecordingStore) -> AsyncIterator[list[str]]:
    """Every statement ``store`` runs inside the block, in order (transaction control included)."""
    seen: list[str] = []
    if isinstance(store, SQLiteRecordingStore):

        def trace(conn: sqlite3.Connection, callback: Any) -> None:
            conn.set_trace_callback(callback)

        await store._run(trace, seen.append, write=False)
        try:
            yield seen
        finally:
            await store._run(trace, None, write=False)
        return
    assert isinstance(store, PostgresRecordingStore)
    database = store.database
    plain = database.transaction

    def logged(record: Any) -> None:
        seen.append(record.query)

    @contextlib.asynccontextmanager
    async def traced() -> AsyncIterator[Any]:
        async with plain() as conn:
            conn.add_query_logger(logged)
            try:
                yield conn
            finally:
                conn.remove_query_logger(logged)

    database.transaction = traced  # type: ignore[method-assign]
    try:
        yield seen
        await asyncio.sleep(0)  # asyncpg calls query loggers with call_soon
    finally:
        database.transaction = plain  # type: ignore[method-assign]


def touching(seen: list[str], table: str) -> list[str]:
    """The statements that name ``table`` (leaving out BEGIN, COMMIT, SAVEPOINT ...)."""
    return [statement for statement in seen if table in statement]
