"""Counting what coordination costs: PostgreSQL statements and Redis commands, for budget tests.

PostgreSQL: ``pg_stat_statements`` on a cluster started with it preloaded, read for the app's
role and database only, so the test's own queries (made as another role) are left out; every
statement counts, transaction control and the pool's connection reset included.

Redis: the commands tusd-py's clients encode (redis-py's ``pack_command``, which every command,
pipelined or not, goes through), by name; and the server's ``total_commands_processed``, which
counts the commands a script runs as well, for the report.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import Iterator
from typing import Any, NamedTuple

import asyncpg
import pytest
from redis.asyncio.connection import AbstractConnection

OBSERVER = "observer"  # the test's role: its statements are not the app's


class Counted(NamedTuple):
    calls: int
    query: str


async def enable_statement_stats(admin_url: str) -> None:
    """The extension in the maintenance database, and a role for the test's own queries."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute(f"CREATE ROLE {OBSERVER} SUPERUSER LOGIN")
    finally:
        await conn.close()


async def app_statements(admin_url: str, database: str, role: str) -> list[Counted]:
    """Each statement ``role`` ran in ``database`` since the last reset, most frequent first."""
    conn = await asyncpg.connect(admin_url, user=OBSERVER)
    try:
        rows = await conn.fetch(
            "SELECT s.calls, s.query FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid JOIN pg_roles r ON r.oid = s.userid"
            " WHERE d.datname = $1 AND r.rolname = $2 ORDER BY s.calls DESC, s.query",
            database, role,
        )  # fmt: skip
    finally:
        await conn.close()
    return [Counted(int(row["calls"]), str(row["query"])) for row in rows]


async def reset_statements(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url, user=OBSERVER)
    try:
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


class RedisCommands:
    """The commands this process's redis-py clients send, by name, while :meth:`counting`."""

    def __init__(self) -> None:
        self.sent: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def counting(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[collections.Counter[str]]:
        original = AbstractConnection.pack_command

        def pack_command(conn: AbstractConnection, *args: Any) -> list[bytes]:
            name = (args[0].decode() if isinstance(args[0], bytes) else str(args[0])).upper()
            if name == "EVAL":
                name += " " + str(args[1]).split("redis.call(", 1)[1][:20]
            self.sent[name] += 1
            return original(conn, *args)

        monkeypatch.setattr(AbstractConnection, "pack_command", pack_command)
        try:
            yield self.sent
        finally:
            monkeypatch.setattr(AbstractConnection, "pack_command", original)


def redis_processed(port: int) -> int:
    """The server's ``total_commands_processed`` (commands run by scripts included), by a raw socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"INFO stats\r\n")
        data = sock.recv(65536)
        header, _, body = data.partition(b"\r\n")  # $<length>\r\n<text>\r\n
        for _ in range(100):
            if len(body) >= int(header[1:]):
                break
            body += sock.recv(65536)
    for line in body.decode().splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":", 1)[1])
    raise AssertionError("INFO stats has no total_commands_processed")


async def settled(read: Any, *, every: float = 0.3, rounds: int = 30) -> Any:
    """Read a counter until two reads ``every`` seconds apart agree (bounded): the app went idle."""
    last = await read()
    for _ in range(rounds):
        await asyncio.sleep(every)
        now = await read()
        if now == last:
            return now
        last = now
    return last
