"""Counting the SQL statements a store sends, on either engine, to pin statement budgets in tests.

SQLite: the connection's trace callback (set on the store's own thread, which owns the connection),
which gives each statement with its values in place. PostgreSQL: an asyncpg query logger on every
connection the store takes from its pool, which gives the text and the arguments apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from tusd_py.pipeline.postgres_store import PostgresRecordingStore
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore
from tusd_py.pipeline.store import RecordingStore


class Statement(NamedTuple):
    text: str
    args: tuple[Any, ...] = ()


@contextlib.asynccontextmanager
async def statements(store: RecordingStore) -> AsyncIterator[list[Statement]]:
    """Every statement ``store`` runs inside the block, in order (transaction control included)."""
    seen: list[Statement] = []
    if isinstance(store, SQLiteRecordingStore):

        def trace(conn: sqlite3.Connection, on: bool) -> None:
            conn.set_trace_callback((lambda sql: seen.append(Statement(sql))) if on else None)

        await store._run(trace, True, write=False)
        try:
            yield seen
        finally:
            await store._run(trace, False, write=False)
        return
    assert isinstance(store, PostgresRecordingStore)
    database = store.database
    plain = database.connection  # transaction() takes its connection from here too

    def logged(record: Any) -> None:
        seen.append(Statement(record.query, tuple(record.args or ())))

    @contextlib.asynccontextmanager
    async def traced() -> AsyncIterator[Any]:
        async with plain() as conn:
            conn.add_query_logger(logged)
            try:
                yield conn
            finally:
                conn.remove_query_logger(logged)

    database.connection = traced  # type: ignore[method-assign]
    try:
        yield seen
        await asyncio.sleep(0)  # asyncpg calls query loggers with call_soon
    finally:
        database.connection = plain  # type: ignore[method-assign]


def touching(seen: list[Statement], table: str) -> list[Statement]:
    """The statements that name ``table`` (leaving out BEGIN, COMMIT, SAVEPOINT ...)."""
    return [statement for statement in seen if table in statement.text]


async def plan(store: RecordingStore, statement: Statement) -> str:
    """The engine's plan for one statement as it was sent (SQLite's query plan; PostgreSQL's EXPLAIN)."""
    if isinstance(store, SQLiteRecordingStore):

        def explain(conn: sqlite3.Connection) -> str:
            return "\n".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement.text))

        return await store._run(explain, write=False)
    assert isinstance(store, PostgresRecordingStore)
    async with store.database.transaction() as conn:
        return "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + statement.text, *statement.args))
