"""Counting what coordination costs: PostgreSQL statements and Redis commands, for the budget test and `make bench`.

PostgreSQL: ``pg_stat_statements`` on a cluster started with :data:`STATEMENT_STATS` preloaded,
read for the app's role and database only, by a role of the observer's own (:data:`OBSERVER`), so
the counter's own queries are left out; every statement counts, transaction control and the
pool's connection reset included.

Redis, on the server's side: ``total_commands_processed`` (commands a script runs counted too) and
the slow log at a threshold of 0 (:class:`RedisCommandLog`), which names every command with the
client that sent it: a command a script runs comes from the Lua client (``?:0``), so the commands
a client *sent* (an EVALSHA counts one, as in the budget) are told apart from those its scripts
ran. Everything goes over a raw socket, so nothing here passes through redis-py (whose commands a
test may be counting).
"""

from __future__ import annotations

import asyncio
import collections
import io
import socket
from collections.abc import Awaitable, Callable
from typing import NamedTuple, TypeVar

import asyncpg

OBSERVER = "observer"  # the counter's role: its statements are not the app's
# The cluster's settings (PostgresServer(settings=...)): every statement tracked, utility ones too.
STATEMENT_STATS = ("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track_utility=on")
SCRIPT_CLIENT = "?:0"  # the slow log's client address of a command run by a script
OWN = {"INFO", "SLOWLOG", "CONFIG"}  # what the counter itself sends
HANDSHAKE = {"HELLO", "CLIENT"}  # a connection's handshake: the pool's, once per connection, not an upload's
LOG_LENGTH = 1_000_000  # slow-log entries kept; a window that fills it is reported as overflowed

T = TypeVar("T")


class Counted(NamedTuple):
    calls: int
    query: str


async def enable_statement_stats(admin_url: str) -> None:
    """The extension in the maintenance database, and a role for the observer's own queries."""
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


def statements_since(before: list[Counted], after: list[Counted]) -> list[Counted]:
    """The statements run between two :func:`app_statements` readings, most frequent first."""
    earlier = {c.query: c.calls for c in before}
    spent = [Counted(c.calls - earlier.get(c.query, 0), c.query) for c in after]
    return sorted((c for c in spent if c.calls > 0), key=lambda c: (-c.calls, c.query))


async def reset_statements(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url, user=OBSERVER)
    try:
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


async def settled(read: Callable[[], Awaitable[T]], *, every: float = 0.3, rounds: int = 30) -> T:
    """Read a counter until two reads ``every`` seconds apart agree (bounded): the app went idle."""
    last = await read()
    for _ in range(rounds):
        await asyncio.sleep(every)
        now = await read()
        if now == last:
            return now
        last = now
    return last


# -- Redis, over a raw socket -----------------------------------------------------------------------
RespValue = str | int | list["RespValue"] | None


def _read_reply(stream: io.BufferedIOBase) -> RespValue:
    line = stream.readline()
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b"-"):
        return rest.decode(errors="replace")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        if length < 0:
            return None
        return stream.read(length + 2)[:-2].decode(errors="replace")
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read_reply(stream) for _ in range(count)]
    raise ValueError(f"unexpected Redis reply {line[:40]!r}")


def redis_call(port: int, *args: str) -> RespValue:
    """One command to the Redis on 127.0.0.1:``port``, on a connection of its own."""
    request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request.encode())
        with sock.makefile("rb") as stream:
            return _read_reply(stream)


def redis_info(port: int, section: str = "stats") -> dict[str, str]:
    text = redis_call(port, "INFO", section)
    assert isinstance(text, str), text
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def redis_processed(port: int) -> int:
    """The server's ``total_commands_processed`` (commands run by scripts included)."""
    return int(redis_info(port)["total_commands_processed"])


class RedisCommandLog:
    """The commands a Redis ran between :meth:`start` and :meth:`read`, by name, sent apart from script-run.

    Uses the slow log with a threshold of 0 (every command logged), so it changes the server's
    configuration for the window and puts it back on :meth:`read`; the log costs the server about
    half a microsecond of CPU per command (redis-benchmark, SET). One counter per server at a time.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._saved: dict[str, str] = {}

    def start(self) -> None:
        for name, value in (("slowlog-log-slower-than", "0"), ("slowlog-max-len", str(LOG_LENGTH))):
            reply = redis_call(self.port, "CONFIG", "GET", name)
            assert isinstance(reply, list) and len(reply) == 2, reply
            self._saved[name] = str(reply[1])
            redis_call(self.port, "CONFIG", "SET", name, value)
        redis_call(self.port, "SLOWLOG", "RESET")

    def read(self) -> tuple[collections.Counter[str], collections.Counter[str], bool]:
        """(sent by clients, run by scripts, whether the log overflowed); the counter's own and the
        connections' handshakes left out. Restores the slow log's configuration."""
        entries = redis_call(self.port, "SLOWLOG", "GET", "-1")
        for name, value in self._saved.items():
            redis_call(self.port, "CONFIG", "SET", name, value)
        redis_call(self.port, "SLOWLOG", "RESET")
        assert isinstance(entries, list), entries
        sent: collections.Counter[str] = collections.Counter()
        scripted: collections.Counter[str] = collections.Counter()
        for entry in entries:
            assert isinstance(entry, list) and len(entry) >= 5, entry
            args, client = entry[3], entry[4]
            assert isinstance(args, list) and args, entry
            name = str(args[0]).upper()
            if client == SCRIPT_CLIENT:
                scripted[name] += 1
            elif name not in OWN | HANDSHAKE:
                sent[name] += 1
        return sent, scripted, len(entries) >= LOG_LENGTH
