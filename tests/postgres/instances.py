"""Helpers for the multi-instance tests: tusd-py subprocesses sharing one PostgreSQL and one directory.

Each instance keeps its in-process upload locker, so a test writes each upload through one
instance only (creation, PATCH, HEAD on the same one); what is shared and raced over is the
state in PostgreSQL: quotas, recordings, jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg

from conformance.live_server import LiveServer
from tests.tokens import SECRET, bearer

TUS = {"Tus-Resumable": "1.0.0"}


@contextlib.contextmanager
def instances(count: int, storage: Path, database_url: str, *extra: str) -> Iterator[list[LiveServer]]:
    """``count`` tusd-py processes on one storage directory and one database, stopped by PID."""
    servers = [
        LiveServer(storage, "--database-url", database_url, "--jwt-secret", SECRET, *extra,
                   log_path=storage.parent / f"instance-{n}.log")
        for n in range(count)
    ]  # fmt: skip
    try:
        for server in servers:
            server.start(timeout=60)
        yield servers
    finally:
        for server in servers:
            server.stop(grace=10)


async def create(session: aiohttp.ClientSession, server: LiveServer, user: str, length: int) -> aiohttp.ClientResponse:
    headers = {**TUS, **bearer(user), "Upload-Length": str(length)}
    async with session.post(server.url, headers=headers) as resp:
        await resp.read()
        return resp


async def upload(session: aiohttp.ClientSession, server: LiveServer, user: str, data: bytes) -> str:
    """Create and send a whole upload through one instance; return its id."""
    resp = await create(session, server, user, len(data))
    assert resp.status == 201, resp.status
    upload_id = resp.headers["Location"].rsplit("/", 1)[1]
    headers = {
        **TUS, **bearer(user), "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
    }  # fmt: skip
    async with session.patch(server.url + upload_id, headers=headers, data=data) as patched:
        assert patched.status == 204, await patched.text()
    return upload_id


async def fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def wait_until_completed(database_url: str, ids: list[str], within: float = 120.0) -> list[asyncpg.Record]:
    """The recordings of ``ids`` once all are completed (bounded wait; fails with what it saw)."""
    rows: list[asyncpg.Record] = []
    for _ in range(int(within / 0.2)):
        rows = await fetch(database_url, "SELECT * FROM recordings WHERE id = ANY($1::text[])", ids)
        if len(rows) == len(ids) and all(row["status"] == "completed" for row in rows):
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"not all completed: {[(row['id'], row['status']) for row in rows]}")
