"""`make bench`'s scale-out part: tusd-py with ``--processes 2`` (Redis + PostgreSQL) beside one process.

On the filesystem ``small`` and ``conc16`` workloads the peer "tusd-py x2" runs two supervised
worker processes on one port, with upload locks in a real redis-server and recordings, jobs and
quotas in a real PostgreSQL (conformance/redis_server.py, conformance/postgres_server.py: Debian
packages, started here on loopback, stopped by PID at the end). Printed per workload and run:
its ratio to one tusd-py process and to @tus/server, and where the CPU went during the upload
phase: the workers, Redis, PostgreSQL (every process of the cluster) and the rest of the machine
(the client, SeaweedFS idle, other load), so that a 2-core result can be read for what it is.
Also printed, per measurement: what coordination cost per upload (issue 27's budget), PostgreSQL
statements of the server's database (``pg_stat_statements``, every statement: transaction control,
start-up and migrations included, spread over the uploads) and Redis commands (the server's
``total_commands_processed`` delta, which counts the commands scripts run too, and the script
runs alone, EVALSHA and EVAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rss import CLOCK_TICKS, cpu_seconds, descendants
from servers import REPO, Peer, S3Target, tusd_py_fs

sys.path.insert(0, str(REPO))  # conformance/ (the real engines' fixtures) lives at the top of the tree

NAME = "tusd-py x2"
WORKLOADS = ("small", "conc16")


@dataclass
class Engines:
    redis_url: str = ""
    postgres: Any = None  # conformance.postgres_server.PostgresServer
    redis_pid: int | None = None
    database_url: str = ""
    cpu: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    redis_port: int = 0
    counts: list[tuple[str, str, int, dict[str, int]]] = field(default_factory=list)  # backend, workload, run


ENGINES = Engines()


@contextlib.contextmanager
def engines(work: Path) -> Iterator[Engines | None]:
    """Redis and PostgreSQL for the run, or None (printed why) when their binaries are missing."""
    from conformance.postgres_server import PostgresServer, find_pg_bin
    from conformance.redis_server import RedisServer, find_redis_server

    bin_dir = find_pg_bin()
    if bin_dir is None or find_redis_server() is None:
        print("bench: tusd-py x2 skipped: needs redis-server and PostgreSQL (scripts/ensure-system-packages.sh)")
        yield None
        return
    stats = ("shared_preload_libraries=pg_stat_statements",)
    with RedisServer(work / "redis") as redis, PostgresServer(bin_dir, settings=stats) as postgres:
        asyncio.run(_sql(postgres.url(), "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        ENGINES.redis_url = redis.url
        ENGINES.redis_port = redis.port
        ENGINES.redis_pid = redis.process.pid if redis.process is not None else None
        ENGINES.postgres = postgres
        yield ENGINES


def _command(port: int, data: Path, s3: S3Target | None) -> list[str]:
    ENGINES.database_url = ENGINES.postgres.create_database()  # fresh per measurement, as data is
    return [
        *tusd_py_fs(port, data, s3),
        *("--processes", "2", "--redis-url", ENGINES.redis_url, "--database-url", ENGINES.database_url),
        *("--download-signing-key", "bench-download-links-" + "k" * 32),
    ]


PEER = Peer(NAME, "fs", _command, "get")


def steps(backend: str, names: list[str], running: Engines | None) -> list[tuple[str, Peer]]:
    """The extra (workload, peer) steps of a backend: tusd-py x2 on fs small and conc16."""
    if running is None or backend != "fs":
        return []
    return [(name, PEER) for name in names if name in WORKLOADS]


def _tree_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    return sum(cpu_seconds(p) or 0.0 for p in [pid, *descendants(pid)])


def _machine_cpu() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # not idle, not iowait
    return busy / CLOCK_TICKS


def _supervisor() -> int | None:
    """The running tusd-py x2 server among this benchmark's children (found by its command line)."""
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError):
            if b"--processes\x002" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


def _sample() -> dict[str, float]:
    postgres_pid = ENGINES.postgres.pid() if ENGINES.postgres is not None else None
    return {
        "tusd-py workers": _tree_cpu(_supervisor()),
        "redis-server": _tree_cpu(ENGINES.redis_pid),
        "postgres": _tree_cpu(postgres_pid),
        "machine": _machine_cpu(),
    }


@contextlib.contextmanager
def cpu_split(peer: Peer, label: str) -> Iterator[None]:
    """Around one tusd-py x2 measurement: CPU seconds of the workers, Redis, PostgreSQL and the rest
    of the machine, sampled while the server lives (its workers' time is lost once they exit)."""
    if peer.name != NAME:
        yield
        return
    samples: list[dict[str, float]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.25):
            if _supervisor() is not None:
                samples.append(_sample())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
    if len(samples) >= 2:
        first, last = samples[0], samples[-1]
        spent = {k: last[k] - first[k] for k in first}
        spent["client and the rest"] = spent.pop("machine") - sum(spent.values())
        ENGINES.cpu.append((label, spent))


async def _sql(url: str, query: str, *args: object) -> Any:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def _redis_info(section: str) -> dict[str, str]:
    with socket.create_connection(("127.0.0.1", ENGINES.redis_port), timeout=5) as sock:
        sock.sendall(f"INFO {section}\r\n".encode())
        header, _, body = sock.recv(65536).partition(b"\r\n")
        for _ in range(100):
            if len(body) >= int(header[1:]):
                break
            body += sock.recv(65536)
    return dict(line.split(":", 1) for line in body.decode().splitlines() if ":" in line)


def _redis_counts() -> dict[str, int]:
    stats = _redis_info("stats") | _redis_info("commandstats")
    scripts = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        if name in stats:
            scripts += int(stats[name].split(",", 1)[0].removeprefix("calls="))
    return {"redis": int(stats["total_commands_processed"]), "scripts": scripts}


@contextlib.contextmanager
def counted(peer: Peer, backend: str, workload: str, run: int) -> Iterator[None]:
    """Around one tusd-py x2 measurement: the statements and commands it cost (see the docstring)."""
    if peer.name != NAME:
        yield
        return
    before = _redis_counts()
    yield
    after = _redis_counts()
    database = ENGINES.database_url.rsplit("/", 1)[1]
    statements = asyncio.run(
        _sql(
            ENGINES.postgres.url(),
            "SELECT COALESCE(SUM(calls), 0)::bigint FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1",
            database,
        )
    )
    spent = {k: after[k] - before[k] - (2 if k == "redis" else 0) for k in after}  # our two INFO calls
    ENGINES.counts.append((backend, workload, run, {"postgres": int(statements), **spent}))


def ratio_lines(data: list[Any], runs: int) -> list[str]:
    """tusd-py x2 against one tusd-py process and against @tus/server, per workload and run."""

    def metric(m: Any) -> float | None:
        if m.result is None or m.error:
            return None
        value = m.result["uploads_s" if m.workload == "small" else "mib_s"]
        return float(value) if value else None

    lines: list[str] = []
    for workload in WORKLOADS:
        for run in range(1, runs + 1):
            found = {m.peer: metric(m) for m in data if m.backend == "fs" and m.workload == workload and m.run == run}
            mine = found.get(NAME)
            if mine is None:
                continue
            unit = "uploads/s" if workload == "small" else "MiB/s"
            parts = [f"{mine:.1f} {unit}"]
            for other in ("tusd-py", "@tus/server"):
                theirs = found.get(other)
                parts.append(f"/ {other}: " + ("-" if not theirs else f"{mine / theirs:.2f}x"))
            lines.append(f"fs {workload} run {run}: {NAME} " + ", ".join(parts))
    for backend, workload, run, spent in ENGINES.counts:
        uploads = next(
            (m.result.get("uploads") for m in data if m.result and m.peer == NAME
             and (m.backend, m.workload, m.run) == (backend, workload, run)),
            None,
        )  # fmt: skip
        if uploads:
            lines.append(
                f"coordination per upload, {backend} {workload} run {run}: {spent['postgres'] / uploads:.1f}"
                f" PostgreSQL statements, {spent['scripts'] / uploads:.1f} Redis script runs (EVALSHA),"
                f" {spent['redis'] / uploads:.1f} Redis commands processed (commands inside scripts included);"
                " from the server's start to its stop (processing as far as it got; the client's POST + PATCH"
                " and verifying GETs); budget (issue 27, creation-with-upload processed to completed:"
                " tests/postgres/test_coordination_budget.py): 10 statements, 6 commands"
            )
    for label, spent in ENGINES.cpu:
        total = sum(max(0.0, v) for v in spent.values()) or 1.0
        shares = ", ".join(f"{k} {v:.1f} s ({100 * max(0.0, v) / total:.0f}%)" for k, v in spent.items())
        lines.append(f"CPU, {label} (upload and verify phases, both cores): {shares}")
    return lines
