"""`make bench`'s scale-out part: the tusd-py configurations of issue 27 beside one embedded process.

On the filesystem ``small`` and ``conc16`` workloads three more tusd-py rows run, each with the
same flags as the "tusd-py" row (processing on: the default two job workers) plus:

- "tusd-py x2": ``--processes 2`` on the embedded default (SQLite, locks within the host). When
  the server refuses that configuration (exit 2 and a one-line reason), the row says
  "refused: <reason>" and its targets are not measured; the run goes on.
- "tusd-py redis+pg": one process with ``--redis-url`` and ``--database-url``;
- "tusd-py redis+pg x2": the same with ``--processes 2``.

Redis and PostgreSQL are real servers (conformance/redis_server.py, conformance/postgres_server.py:
Debian packages, started here on loopback for the whole run, stopped by PID at the end); every
measurement gets a fresh database. For each row the upload phase is measured as for any server,
with the CPU of the whole tusd-py process tree (a supervisor and its workers summed). Around the
rows with Redis and PostgreSQL, :class:`Coordination` also takes the CPU of redis-server and of
the PostgreSQL cluster over the upload phase, and what coordination cost (issue 27's budget):
once the upload phase ends it waits until every upload's recording is processed, then counts the
PostgreSQL statements of the app's database and the Redis commands the server sent and its
scripts ran, since the upload phase began (conformance/coordination_counts.py, shared with the
budget test).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rss import CLOCK_TICKS, tree_cpu_seconds
from servers import Peer, S3Target, tusd_py_fs

from conformance import coordination_counts as counts  # the project's package (editable in .venv)

ONE = "tusd-py"
X2 = "tusd-py x2"
REDIS_PG = "tusd-py redis+pg"
REDIS_PG_X2 = "tusd-py redis+pg x2"
VARIANTS = (X2, REDIS_PG, REDIS_PG_X2)
WORKLOADS = ("small", "conc16")
SIGNING_KEY = "bench-download-links-" + "k" * 32  # several processes need one key for signed links
PROCESSED_WITHIN = 120.0  # seconds after the upload phase for every recording to be processed
IDLE_WITHIN = 20.0  # seconds for a fresh server (every worker) to finish starting


@dataclass
class Engines:
    redis_url: str
    redis_port: int
    redis_pid: int | None
    postgres: Any  # conformance.postgres_server.PostgresServer
    database_url: str = ""  # the current measurement's


ENGINES: list[Engines] = []  # the running engines, if any (the command builders read them)


@contextlib.contextmanager
def engines(work: Path) -> Iterator[Engines | None]:
    """Redis and PostgreSQL for the run, or None (printed why) when their binaries are missing."""
    from conformance.postgres_server import PostgresServer, find_pg_bin
    from conformance.redis_server import RedisServer, find_redis_server

    bin_dir = find_pg_bin()
    if bin_dir is None or find_redis_server() is None:
        print("bench: the redis+pg rows are skipped: needs redis-server and PostgreSQL (make system-deps)")
        yield None
        return
    with RedisServer(work / "redis") as redis, PostgresServer(bin_dir, settings=counts.STATEMENT_STATS) as postgres:
        asyncio.run(counts.enable_statement_stats(postgres.url()))
        pid = redis.process.pid if redis.process is not None else None
        ENGINES.append(Engines(redis.url, redis.port, pid, postgres))
        try:
            yield ENGINES[-1]
        finally:
            ENGINES.clear()


def _x2(port: int, data: Path, s3: S3Target | None) -> list[str]:
    return [*tusd_py_fs(port, data, s3), "--processes", "2", "--download-signing-key", SIGNING_KEY]


def _redis_pg(processes: int) -> Any:
    def command(port: int, data: Path, s3: S3Target | None) -> list[str]:
        engines = ENGINES[-1]
        engines.database_url = engines.postgres.create_database()  # fresh per measurement, as data is
        return [
            *tusd_py_fs(port, data, s3),
            *("--processes", str(processes), "--redis-url", engines.redis_url),
            *("--database-url", engines.database_url, "--download-signing-key", SIGNING_KEY),
        ]

    return command


PEERS = {
    X2: Peer(X2, "fs", _x2, "get", role="variant"),
    REDIS_PG: Peer(REDIS_PG, "fs", _redis_pg(1), "get", role="variant"),
    REDIS_PG_X2: Peer(REDIS_PG_X2, "fs", _redis_pg(2), "get", role="variant"),
}


def steps(backend: str, names: list[str], running: Engines | None, servers: set[str] | None) -> list[tuple[str, Peer]]:
    """The extra (workload, peer) steps of a backend: the variants on fs small and conc16."""
    if backend != "fs":
        return []
    wanted = [n for n in VARIANTS if (servers is None or n in servers) and (n == X2 or running is not None)]
    return [(name, PEERS[n]) for name in names if name in WORKLOADS for n in wanted]


def counts_processing(peer: Peer, workload: str) -> bool:
    """Whether this measurement also takes tusd-py's CPU until its processing is done (issue 27's
    rows: one process defers part of its processing past the upload phase, several do less so)."""
    return peer.backend == "fs" and workload in WORKLOADS and peer.role in ("subject", "variant")


def settle(pid: int, within: float = IDLE_WITHIN) -> None:
    """Until the server's process tree stops using CPU (every worker started), or ``within`` seconds."""
    deadline = time.monotonic() + within
    last, quiet = tree_cpu_seconds(pid), 0
    while time.monotonic() < deadline and quiet < 2:
        time.sleep(0.25)
        now = tree_cpu_seconds(pid)
        quiet = quiet + 1 if now - last < 0.03 else 0
        last = now


def _machine_cpu() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # not idle, not iowait
    return busy / CLOCK_TICKS


class Coordination:
    """Around one measurement of a redis+pg row (see the module docstring); does nothing for others."""

    def __init__(self, peer: Peer) -> None:
        self.engines = ENGINES[-1] if peer.name in (REDIS_PG, REDIS_PG_X2) and ENGINES else None
        self._cpu: dict[str, float] = {}
        self._statements: list[counts.Counted] = []
        self._log: counts.RedisCommandLog | None = None

    def _database(self) -> str:
        assert self.engines is not None
        return str(self.engines.database_url.rsplit("/", 1)[1])

    def _cpu_now(self) -> dict[str, float]:
        assert self.engines is not None
        return {
            "redis-server": tree_cpu_seconds(self.engines.redis_pid),
            "postgres": tree_cpu_seconds(self.engines.postgres.pid()),
            "machine": _machine_cpu(),
        }

    async def _app_statements(self) -> list[counts.Counted]:
        assert self.engines is not None
        postgres = self.engines.postgres
        return await counts.app_statements(postgres.url(), self._database(), postgres.user)

    def start(self) -> None:
        """Just before the client starts."""
        if self.engines is None:
            return
        self._statements = asyncio.run(self._app_statements())
        self._log = counts.RedisCommandLog(self.engines.redis_port)
        self._log.start()
        self._cpu = self._cpu_now()

    def uploaded(self, uploads: int, server_cpu_s: float | None) -> dict[str, Any] | None:
        """When the upload phase ends: CPU now; counts once every recording is processed."""
        if self.engines is None or self._log is None:
            return None
        now = self._cpu_now()
        cpu = {k: now[k] - self._cpu[k] for k in now}
        cpu["client and the rest"] = cpu.pop("machine") - cpu["redis-server"] - cpu["postgres"] - (server_cpu_s or 0)
        waited = time.monotonic()
        processed = asyncio.run(self._processed_recordings(uploads))
        waited = time.monotonic() - waited
        statements = counts.statements_since(self._statements, asyncio.run(self._app_statements()))
        sent, scripted, overflowed = self._log.read()
        return {
            "cpu_s": cpu,
            "recordings_processed": processed,
            "processing_wait_s": round(waited, 1),
            "pg_statements": sum(c.calls for c in statements),
            "pg_top": [[c.calls, " ".join(c.query.split())[:140]] for c in statements[:8]],
            "redis_sent": sum(sent.values()),
            "redis_sent_by_name": dict(sent.most_common()),
            "redis_scripted": sum(scripted.values()),
            "redis_log_overflowed": overflowed,
        }

    async def _processed_recordings(self, uploads: int) -> int:
        """Recordings completed or failed, waited for until all ``uploads`` are, or PROCESSED_WITHIN."""
        import asyncpg

        assert self.engines is not None
        url = self.engines.postgres.url(self._database())
        conn = await asyncpg.connect(url, user=counts.OBSERVER)
        try:
            done = 0
            for _ in range(int(PROCESSED_WITHIN / 0.2)):
                done = int(
                    await conn.fetchval("SELECT COUNT(*) FROM recordings WHERE status IN ('completed', 'failed')")
                )
                if done >= uploads:
                    break
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
        await counts.settled(self._app_statements, every=0.3, rounds=5)  # the last commits
        return done


def counted_by_name(by_name: dict[str, int], uploads: int) -> str:
    order = collections.Counter(by_name).most_common()
    return ", ".join(f"{name} {calls / uploads:.2f}" for name, calls in order) or "-"
