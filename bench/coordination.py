"""What Redis + PostgreSQL cost tusd-py on small uploads: one embedded process against one and two
coordinated processes, in one run, and (``--profile``) where the coordinated process spends its CPU.

    .venv/bin/python bench/coordination.py [--runs 2] [--workload small] [--quick] [--profile] [--gil]

Starts a redis-server and a PostgreSQL on loopback once (bench/scaleout.py's engines, with
``pg_stat_statements``), then per run, interleaved, each server fresh (new process, new directory,
new database): ``embedded`` (``serve``, SQLite and in-process locks), ``redis+pg`` (the same with
``--redis-url`` and ``--database-url``) and ``redis+pg x2`` (``--processes 2``). bench/client.py
drives each (processing on, the server's defaults). Printed per server and run: uploads/s, the
ratio to the embedded process of the same run, CPU ms per upload in tusd-py, Redis and PostgreSQL
during the upload phase, and the PostgreSQL statements and Redis commands per upload from start to
stop (processing as far as it got). Issue 27's targets: redis+pg >= 0.8x, redis+pg x2 >= 1.2x.

``--profile`` samples the one coordinated process with py-spy (``.venv/bin/py-spy``) in its runs
and prints its hottest frames (bench/profile.py's summary); raw stacks in
bench/.work/profile-coordination.txt. Not a replacement for ``make bench``, which prints the
published figures: an A/B tool for the coordination path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from profile import summarize  # bench/profile.py: the script's directory comes first on sys.path

import scaleout
from rss import cpu_seconds, descendants
from servers import BENCH, REPO, WORK, Peer, RunningServer, S3Target, tusd_py_fs

SETTLED_QUERY = "SELECT COUNT(*) FROM recordings WHERE status NOT IN ('completed', 'failed')"
SIGNING = ("--download-signing-key", "bench-download-links-" + "k" * 32)


def _coordinated(
    processes: int, redis: bool = True, postgres: bool = True
) -> Callable[[int, Path, S3Target | None], list[str]]:
    def command(port: int, data: Path, s3: S3Target | None) -> list[str]:
        scaleout.ENGINES.database_url = scaleout.ENGINES.postgres.create_database()
        flags = ["--redis-url", scaleout.ENGINES.redis_url] if redis else []
        flags += ["--database-url", scaleout.ENGINES.database_url] if postgres else []
        return [*tusd_py_fs(port, data, s3), "--processes", str(processes), *flags, *SIGNING]

    return command


PEERS = [
    Peer("embedded", "fs", tusd_py_fs, "none", role="subject"),
    Peer("redis+pg", "fs", _coordinated(1), "none"),
    Peer("redis+pg x2", "fs", _coordinated(2), "none"),
    # Not run unless named (--only): one engine at a time, to tell their costs apart.
    Peer("redis", "fs", _coordinated(1, postgres=False), "none", role="optional"),
    Peer("pg", "fs", _coordinated(1, redis=False), "none", role="optional"),
]


def _tree(pid: int | None) -> float:
    if pid is None:
        return 0.0
    return sum(cpu_seconds(p) or 0.0 for p in [pid, *descendants(pid)])


def _engines_cpu() -> tuple[float, float]:
    engines = scaleout.ENGINES
    return _tree(engines.redis_pid), _tree(engines.postgres.pid() if engines.postgres is not None else None)


def _measure(peer: Peer, run: int, args: argparse.Namespace) -> dict[str, float | str]:
    data_dir = WORK / "data" / "coordination"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = RunningServer(peer, data_dir, WORK / "logs" / f"coordination-{peer.name.replace(' ', '_')}.log", None)
    spy = None
    try:
        server.wait_ready()
        time.sleep(0.5)  # a worker process of x2 may still be starting behind the first answer
        coordinated = peer.name != "embedded"
        counts_before = scaleout._redis_counts() if coordinated else {}
        if args.profile and peer.name == args.profile:
            raw = WORK / "profile-coordination.txt"
            spy_cmd = [str(REPO / ".venv/bin/py-spy"), "record", "--pid", str(server.pid), "--rate", "200"]
            spy_cmd += ["--format", "raw", "-o", str(raw), "--nonblocking", *(["--gil"] if args.gil else [])]
            spy = subprocess.Popen(spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        server_before, (redis_before, pg_before) = _tree(server.pid), _engines_cpu()
        client = [sys.executable, str(BENCH / "client.py"), "--url", server.url, "--workload", args.workload]
        client += ["--verify", "none", *(["--quick"] if args.quick else [])]
        out = subprocess.run(client, capture_output=True, text=True, timeout=900, check=False)
        server_cpu, (redis_after, pg_after) = _tree(server.pid) - server_before, _engines_cpu()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
            spy = None
        if out.returncode != 0:
            return {"error": out.stderr.strip()[-300:]}
        result = json.loads(out.stdout)
        uploads = result["uploads"] or 1
        row: dict[str, float | str] = {
            "uploads_s": result["uploads_s"],
            "cpu_ms": 1000 * server_cpu / uploads,
            "redis_ms": 1000 * (redis_after - redis_before) / uploads if coordinated else 0.0,
            "pg_ms": 1000 * (pg_after - pg_before) / uploads if coordinated else 0.0,
        }
        if result["errors"]:
            row["error"] = str(result["errors"][0])[:200]
        if coordinated:
            if "pg" in peer.name:
                _settled(args.settle)  # processing catches up before the counts are read
            after = scaleout._redis_counts()
            row["commands"] = (after["redis"] - counts_before["redis"] - 2) / uploads
            row["scripts"] = (after["scripts"] - counts_before["scripts"]) / uploads
        if "pg" in peer.name:
            database = scaleout.ENGINES.database_url.rsplit("/", 1)[1]
            statements = asyncio.run(
                scaleout._sql(
                    scaleout.ENGINES.postgres.url(),
                    "SELECT COALESCE(SUM(calls), 0)::bigint FROM pg_stat_statements s"
                    " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 AND s.query NOT LIKE $2",
                    database,
                    SETTLED_QUERY[:40] + "%",
                )
            )
            row["statements"] = int(statements) / uploads
            if args.statements:
                row["top"] = asyncio.run(_top_statements(database, uploads))
        return row
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(timeout=60)
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def _top_statements(database: str, uploads: int) -> str:
    import asyncpg

    conn = await asyncpg.connect(scaleout.ENGINES.postgres.url())
    try:
        rows = await conn.fetch(
            "SELECT calls, query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = $1 ORDER BY calls DESC LIMIT 15",
            database,
        )
    finally:
        await conn.close()
    return "\n".join(f"    {r['calls'] / uploads:6.2f}  {' '.join(r['query'].split())[:140]}" for r in rows)


def _settled(within: float) -> None:
    """Until every recording of the server's database is completed or failed (or ``within`` s)."""
    url = scaleout.ENGINES.postgres.url(scaleout.ENGINES.database_url.rsplit("/", 1)[1])
    deadline = time.monotonic() + within
    while asyncio.run(scaleout._sql(url, SETTLED_QUERY)) and time.monotonic() < deadline:
        time.sleep(0.2)


def _line(name: str, run: int, row: dict[str, float | str], embedded: float | None) -> str:
    if "uploads_s" not in row:
        return f"{name:12} run {run}: ERROR {row.get('error')}"
    rate = float(row["uploads_s"])
    ratio = f"{rate / embedded:.2f}x" if embedded else "-"
    text = f"{name:12} run {run}: {rate:7.1f} uploads/s  {ratio:>6} of embedded  tusd-py {float(row['cpu_ms']):5.1f} ms"
    if name != "embedded":
        text += f", Redis {float(row['redis_ms']):4.1f} ms, PostgreSQL {float(row['pg_ms']):4.1f} ms CPU per upload;"
        text += f" per upload: {float(row.get('statements', 0)):.1f} statements,"
        text += f" {float(row['commands']):.1f} Redis commands ({float(row['scripts']):.1f} script runs)"
    else:
        text += " CPU per upload"
    if "error" in row:
        text += f"  [{row['error']}]"
    if "top" in row:
        text += "\n" + str(row["top"])
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--workload", default="small")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(p.name for p in PEERS))
    parser.add_argument("--profile", nargs="?", const="redis+pg", default="", help="py-spy this server (redis+pg)")
    parser.add_argument("--gil", action="store_true", help="with --profile: only samples holding the GIL")
    parser.add_argument("--statements", action="store_true", help="print the most frequent statements")
    parser.add_argument("--settle", type=float, default=60.0, help="at most this long for processing to end")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else [p.name for p in PEERS if p.role != "optional"]
    peers = [p for p in PEERS if p.name in chosen]
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    with scaleout.engines(WORK) as engines:
        if engines is None:
            return 1
        for run in range(1, args.runs + 1):
            rows = {peer.name: _measure(peer, run, args) for peer in peers}
            base = rows.get("embedded", {}).get("uploads_s")
            for name, row in rows.items():
                print(_line(name, run, row, float(base) if base else None), flush=True)
    if args.profile:
        print(summarize(WORK / "profile-coordination.txt", 30))
    return 0


if __name__ == "__main__":
    sys.exit(main())
