"""`make bench`: tusd-py against the tus servers a user would pick instead, on 127.0.0.1.

    .venv/bin/python bench/run.py [--quick] [--only fs|s3] [--workloads large,small] [--runs 2]

Installs what it needs (npm ci in bench/, a separate venv for tuspyserver), then for each run,
workload and server: starts the server fresh on a free loopback port, drives it with
bench/client.py, reads its peak RSS and CPU time once the upload phase ends, lets the client
verify every upload, and stops the server by PID. Prints the table, the ratios and whether
each target holds, and writes the Markdown report (bench/RESULTS.md for a full run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import scaleout
import targets as issue27
from client import WORKLOADS, workload
from report import Measurement, MiB, Target, evaluate, render
from rss import TreeSampler, cpu_seconds, peak_rss_bytes, tree_cpu_seconds
from servers import BENCH, FS_PEERS, REPO, S3_PEERS, SINK, TUSPY_VENV, WORK, Peer, RunningServer, S3Target

CLIENT_TIMEOUT = 1200.0  # one client run, verification included; the client bounds itself first
HUGE_PEERS = {"tusd-py", "@tus/server"}  # the 2 GiB memory check: tusd-py (fs and S3), and @tus/server on fs for scale
DIRECT_WORKLOADS = {"large", "conc16"}  # the S3 limit (a client straight to S3): its targets' workloads
SINGLE = "large,tiny-chunks,huge"  # the workloads of one upload at a time: memory against upload size
NOTES_MARKER = "<!-- notes: everything below this line is kept when bench/run.py rewrites the file -->"


# -- installing -----------------------------------------------------------------------------------
def ensure_node_peer() -> None:
    lock = BENCH / "package-lock.json"
    stamp = BENCH / "node_modules/.package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    if shutil.which("npm") is None or shutil.which("node") is None:
        sys.exit("bench: needs Node.js >= 20.19 and npm on PATH for the @tus/server peer (apt-get install nodejs npm)")
    print("bench: npm ci (@tus/server, @tus/file-store, @tus/s3-store, pinned by bench/package-lock.json)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BENCH, check=True)


def ensure_tuspyserver() -> None:
    requirements = BENCH / "peers/tuspyserver-requirements.txt"
    stamp = TUSPY_VENV / ".installed"
    wanted = requirements.read_text()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print("bench: creating bench/.work/tuspy-venv for tuspyserver (kept out of the project venv)")
    python = shutil.which("python3.11") or shutil.which("python3") or sys.executable
    subprocess.run([python, "-m", "venv", str(TUSPY_VENV)], check=True)
    pip = [str(TUSPY_VENV / "bin/pip"), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    stamp.write_text(wanted)


# -- the machine ----------------------------------------------------------------------------------
def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def _package_version(path: Path) -> str:
    try:
        return str(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "?"


def _dirty() -> str:
    """Whether the server's code differs from the commit (others may be editing the tree meanwhile)."""
    paths = ["tusd_py", "storage_backends", "extensions"]
    cmd = ["git", "-C", str(REPO), "status", "--porcelain", "--", *paths]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    return f" + uncommitted changes in {len(out.splitlines())} server files" if out else ""


def machine() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
    tuspy = TUSPY_VENV / "bin/python"
    return {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": cpu,
        "RAM": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "Python (tusd-py, limit, client)": platform.python_version(),
        "Node": _first_line(["node", "--version"]),
        "aiohttp": _first_line([sys.executable, "-c", "import aiohttp; print(aiohttp.__version__)"]),
        "@tus/server": _package_version(BENCH / "node_modules/@tus/server/package.json"),
        "@tus/file-store": _package_version(BENCH / "node_modules/@tus/file-store/package.json"),
        "@tus/s3-store": _package_version(BENCH / "node_modules/@tus/s3-store/package.json"),
        "tuspyserver": _first_line(
            [str(tuspy), "-c", "import importlib.metadata as m; print(m.version('tuspyserver'))"]
        ),
        "uvicorn": _first_line([str(tuspy), "-c", "import importlib.metadata as m; print(m.version('uvicorn'))"]),
        "tusd-py commit": _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]) + _dirty(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# -- one measurement ------------------------------------------------------------------------------
def measure(
    peer: Peer, name: str, run: int, quick: bool, s3: S3Target | None, data_root: Path | None = None
) -> Measurement:
    m = Measurement(peer=peer.name, role=peer.role, backend=peer.backend, workload=name, run=run)
    m.load_1m = os.getloadavg()[0]
    slug = f"{peer.backend}-{name}-{run}-{peer.name.replace('/', '_').replace('@', '').replace(' ', '_')}"
    data_dir = (data_root or WORK / "data") / slug
    shutil.rmtree(data_dir, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if s3 is not None:
            from s3env import fresh_bucket

            s3 = stack.enter_context(fresh_bucket(s3, "b-" + slug.lower().replace("_", "-")[:50]))
        return _measure(m, peer, data_dir, slug, quick, s3)
    raise AssertionError("unreachable")


def _measure(m: Measurement, peer: Peer, data_dir: Path, slug: str, quick: bool, s3: S3Target | None) -> Measurement:
    if peer.role == "direct":
        return _measure_direct(m, peer, quick, s3)
    name = m.workload
    server = RunningServer(peer, data_dir, WORK / "logs" / f"{slug}.log", s3)
    coordination = scaleout.Coordination(peer)
    try:
        server.wait_ready()
        if peer.role in ("subject", "variant"):
            scaleout.settle(server.pid)  # every worker started: their start-up is not the upload's CPU
        cmd = [sys.executable, str(BENCH / "client.py"), "--url", server.url, "--workload", name]
        cmd += ["--verify", peer.verify_mode(data_dir), "--pause-before-verify", *(["--quick"] if quick else [])]
        cpu_start = tree_cpu_seconds(server.pid)  # a supervisor's workers summed
        storage_start = cpu_seconds(s3.storage_pid) if s3 is not None and s3.storage_pid else None
        coordination.start()
        with TreeSampler(server.pid) as sampler:
            client = subprocess.Popen(
                cmd, cwd=BENCH, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            watchdog = threading.Timer(CLIENT_TIMEOUT, client.kill)
            watchdog.start()
            try:
                assert client.stdin is not None and client.stdout is not None
                first = client.stdout.readline()
                if '"uploaded"' in first:
                    hwm = peak_rss_bytes(server.pid)
                    m.peak_rss = max(hwm or 0, sampler.peak_bytes) or None
                    cpu_end = tree_cpu_seconds(server.pid) if server.alive() else None
                    m.server_cpu_s = None if cpu_end is None else cpu_end - cpu_start
                    m.coordination = coordination.uploaded(workload(name, quick).uploads, m.server_cpu_s)
                    if s3 is not None and storage_start is not None:
                        storage_end = cpu_seconds(s3.storage_pid)
                        m.storage_cpu_s = None if storage_end is None else storage_end - storage_start
                    alive_after_upload = server.alive()
                    if scaleout.counts_processing(peer, name) and alive_after_upload:
                        scaleout.settle(server.pid, within=scaleout.PROCESSED_WITHIN)  # processing done
                        processed_end = tree_cpu_seconds(server.pid) if server.alive() else None
                        m.processed_cpu_s = None if processed_end is None else processed_end - cpu_start
                    if peer.role == "subject" and s3 is not None:
                        m.s3_requests = s3_requests(server.url)
                    client.stdin.write("go\n")
                    client.stdin.flush()
                    out, err = client.communicate()
                else:
                    out, err = first + client.stdout.read(), (client.stderr.read() if client.stderr else "")
                    client.wait()
                    alive_after_upload = server.alive()
            finally:
                watchdog.cancel()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if client.returncode != 0 or not lines:
            m.error = f"client failed ({client.returncode}): {err.strip().splitlines()[-1:] or out[-200:]}"
        else:
            m.result = json.loads(lines[-1])
        if not alive_after_upload:
            m.error = f"server died: {server.log_tail()}"
    except RuntimeError as exc:
        m.error = server.refusal() or str(exc)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return m


def s3_requests(collection_url: str) -> float | None:
    """The S3 requests tusd-py made so far: the sum of its tusd_py_s3_requests_total counters."""
    url = collection_url.split("/files/")[0] + "/metrics"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("tusd_py_s3_requests_total{")
    )


def _measure_direct(m: Measurement, peer: Peer, quick: bool, s3: S3Target | None) -> Measurement:
    """A peer that is its own client (the S3 limit): the CPU it reports for its timed phase is shown
    as the server's, since it does all the work a tus server would do for S3."""
    cmd = [
        *peer.command(0, WORK, s3),
        "--workload",
        m.workload,
        "--pause-before-verify",
        *(["--quick"] if quick else []),
    ]
    env = dict(os.environ)
    if s3 is not None:
        from s3env import credentials_env

        env.update(credentials_env(s3))
    storage_start = cpu_seconds(s3.storage_pid) if s3 is not None and s3.storage_pid else None
    client = subprocess.Popen(
        cmd, cwd=BENCH, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(CLIENT_TIMEOUT, client.kill)
    watchdog.start()
    try:
        assert client.stdin is not None and client.stdout is not None
        first = client.stdout.readline()
        if '"uploaded"' in first:
            m.peak_rss = peak_rss_bytes(client.pid)
            if s3 is not None and storage_start is not None:
                storage_end = cpu_seconds(s3.storage_pid)
                m.storage_cpu_s = None if storage_end is None else storage_end - storage_start
            client.stdin.write("go\n")
            client.stdin.flush()
            out, err = client.communicate()
        else:
            out, err = first + client.stdout.read(), (client.stderr.read() if client.stderr else "")
            client.wait()
    finally:
        watchdog.cancel()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if client.returncode != 0 or not lines:
        m.error = f"{peer.name} failed ({client.returncode}): {err.strip().splitlines()[-1:] or out[-200:]}"
    else:
        m.result = json.loads(lines[-1])
        m.server_cpu_s = float(m.result["client_cpu_s"])  # its own CPU over the timed phase
    return m


def describe(m: Measurement) -> str:
    if m.error or m.result is None:
        return f"ERROR {m.error}"
    r: dict[str, Any] = m.result
    rss = "-" if m.peak_rss is None else f"{m.peak_rss / MiB:.0f} MiB"
    return (
        f"{r['mib_s']:8.1f} MiB/s {r['uploads_s']:8.1f} up/s p50 {r['patch_p50_ms']:7.1f} ms "
        f"p99 {r['patch_p99_ms']:7.1f} ms rss {rss:>8} cpu {m.server_cpu_s or 0:5.1f} s  {r['verified']}"
    )


# -- targets ----------------------------------------------------------------------------------------
def targets(s3: S3Target | None) -> list[Target]:
    found = [
        Target("fs", "large", "@tus/server", 2.0, "filesystem large >= 2x @tus/server"),
        Target("fs", "large", "simple limit", 0.8, "filesystem large >= 80% of the simplest aiohttp append app"),
        Target("fs", "large", "limit", 0.8, "filesystem large >= 80% of the batched aiohttp append limit"),
        Target("fs", "conc16", "@tus/server", 2.0, "filesystem conc16 >= 2x @tus/server"),
        Target("fs", "conc16", "simple limit", 0.8, "filesystem conc16 >= 80% of the simplest aiohttp append app"),
        Target("fs", "conc16", "limit", 0.8, "filesystem conc16 >= 80% of the batched aiohttp append limit"),
        Target("fs", "small", "@tus/server", 2.0, "filesystem small >= 2x @tus/server uploads/s (processing on)"),
        Target("fs", "*", "rss", 80 * MiB, "filesystem peak RSS <= 80 MiB, every workload (conc16: 16 at once)"),
        Target("fs", SINGLE, "rss", 80 * MiB, "filesystem peak RSS <= 80 MiB, one upload of 64 MiB .. 2 GiB"),
    ]
    if s3 is not None:
        budget = s3.part_size * s3.part_concurrency + 80 * MiB
        found += [
            Target("s3", "large", "@tus/s3-store", 2.0, "S3 large >= 2x @tus/s3-store"),
            Target("s3", "large", "S3 limit", 0.8, "S3 large >= 80% of the S3 limit (aiobotocore multipart)"),
            Target("s3", "conc16", "@tus/s3-store", 2.0, "S3 conc16 >= 2x @tus/s3-store"),
            Target("s3", "conc16", "S3 limit", 0.8, "S3 conc16 >= 80% of the S3 limit (aiobotocore multipart)"),
            Target("s3", "small", "@tus/s3-store", 3.0, "S3 small >= 3x @tus/s3-store uploads/s"),
            Target("s3", "tiny-chunks", "@tus/s3-store", 3.0, "S3 tiny-chunks >= 3x @tus/s3-store"),
            Target(
                "s3",
                "*",
                "rss",
                budget,
                f"S3 peak RSS <= part size x part concurrency + 80 MiB = {budget / MiB:.0f} MiB, every workload",
            ),
            Target(
                "s3", SINGLE, "rss", budget, f"S3 peak RSS <= {budget / MiB:.0f} MiB, one upload of 64 MiB .. 2 GiB"
            ),
        ]
    return found


# -- the whole run ----------------------------------------------------------------------------------
def plan(
    backend: str,
    names: list[str],
    with_sink: bool,
    servers: set[str] | None = None,
    engines: scaleout.Engines | None = None,
) -> list[tuple[str, Peer]]:
    peers = [p for p in (FS_PEERS if backend == "fs" else S3_PEERS) if servers is None or p.name in servers]
    steps: list[tuple[str, Peer]] = []
    for name in names:
        chosen = [p for p in peers if name != "huge" or p.name in HUGE_PEERS]
        chosen = [p for p in chosen if p.role != "direct" or name in DIRECT_WORKLOADS]
        if with_sink and backend == "fs" and name != "huge":
            chosen = [SINK, *chosen]
        steps += [(name, p) for p in chosen]
    # tusd-py x2, redis+pg, redis+pg x2 right after the tusd-py row of their workload: the ratios
    # between configurations compare measurements seconds apart, not minutes (the load moves).
    variants: dict[str, list[tuple[str, Peer]]] = {}
    for name, peer in scaleout.steps(backend, names, engines, servers):
        variants.setdefault(name, []).append((name, peer))
    ordered: list[tuple[str, Peer]] = []
    for name, peer in steps:
        ordered.append((name, peer))
        if peer.role == "subject":
            ordered += variants.pop(name, [])
    return ordered + [step for rest in variants.values() for step in rest]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of the whole pipeline")
    parser.add_argument(
        "--targets",
        action="store_true",
        help="issue 27's targets alone: filesystem small and conc16 with every tusd-py configuration and"
        " @tus/server (report in bench/.work/RESULTS-targets.md)",
    )
    parser.add_argument("--only", choices=["fs", "s3"], help="one storage backend only")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"comma-separated, from {', '.join(WORKLOADS)}"
    )
    parser.add_argument(
        "--servers",
        help="comma-separated server names to run (e.g. 'tusd-py,@tus/server'): a developer's quick comparison;"
        " targets whose peer did not run are reported as not measured",
    )
    parser.add_argument("--runs", type=int, default=2, help="runs of every workload (default 2, at least 1)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where servers store (default bench/.work/data); a tmpfs such as /dev/shm/bench takes the disk out"
        " of an A/B comparison of CPU cost",
    )
    parser.add_argument("--results", type=Path, help="Markdown report (default: bench/RESULTS.md, or .work/ if quick)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: print and write the report of bench/.work/last-run.json",
    )
    args = parser.parse_args()
    # SIGTERM (a CI timeout, kill PID) unwinds like Ctrl-C: every started server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.report_only:
        saved = json.loads((WORK / "last-run.json").read_text())
        options = saved["options"]
        default = "RESULTS-targets.md" if options.get("targets") else "RESULTS-quick.md" if options["quick"] else None
        report(saved, args.results or (WORK / default if default else BENCH / "RESULTS.md"))
        return 0
    if args.targets:
        args.only, args.workloads = "fs", ",".join(issue27.WORKLOADS)
        args.servers = args.servers or ",".join(issue27.SERVERS)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or args.runs < 1:
        parser.error(f"unknown workloads {unknown}" if unknown else "--runs must be at least 1")
    servers = None if not args.servers else {n.strip() for n in args.servers.split(",") if n.strip()}
    known = {p.name for p in (*FS_PEERS, *S3_PEERS)} | set(scaleout.VARIANTS)
    if servers is not None and not servers <= known:
        parser.error(f"unknown servers {sorted(servers - known)}; known: {', '.join(sorted(known))}")
    default = "RESULTS-targets.md" if args.targets else "RESULTS-quick.md" if args.quick else None
    results_path = args.results or (WORK / default if default else BENCH / "RESULTS.md")
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    backends = [args.only] if args.only else ["fs", "s3"]
    ensure_node_peer()
    if "fs" in backends and (servers is None or "tuspyserver" in servers):
        ensure_tuspyserver()
    about = machine()
    data: list[Measurement] = []
    s3_note = ""
    s3_stack = contextlib.ExitStack()
    s3: S3Target | None = None
    with s3_stack:
        if "s3" in backends:
            from s3env import S3Unavailable, start_s3

            try:
                s3 = s3_stack.enter_context(start_s3(WORK))
            except S3Unavailable as exc:
                s3_note = f"S3 skipped: {exc}"
                print(f"bench: {s3_note}")
                backends.remove("s3")
        wants_engines = "fs" in backends and (
            servers is None or bool(servers & {scaleout.REDIS_PG, scaleout.REDIS_PG_X2})
        )
        engines = s3_stack.enter_context(scaleout.engines(WORK)) if wants_engines else None
        for run in range(1, args.runs + 1):
            for backend in backends:
                for name, peer in plan(backend, names, with_sink=servers is None, servers=servers, engines=engines):
                    if peer.role == "sink" and run > 1:
                        continue  # the client's ceiling: once is enough
                    if args.targets and peer.name not in issue27.NEEDED[name]:
                        continue  # no target of issue 27 needs it
                    began = time.monotonic()
                    m = measure(peer, name, run, args.quick, s3 if backend == "s3" else None, args.data_dir)
                    data.append(m)
                    clock = f"[{time.monotonic() - started:5.0f}s +{time.monotonic() - began:3.0f}s]"
                    print(f"{clock} run {run} {backend:2} {name:11} {peer.name:14} {describe(m)}", flush=True)
    elapsed = time.monotonic() - started
    about["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    about["benchmark wall time"] = f"{elapsed / 60:.1f} min"
    saved = {
        "about": about,
        "options": {
            "quick": args.quick,
            "runs": args.runs,
            "workloads": ",".join(names),
            "s3_note": s3_note,
            "targets": args.targets,
        },
        "s3": None if s3 is None else {"part_size": s3.part_size, "part_concurrency": s3.part_concurrency},
        "measurements": [m.__dict__ for m in data],
    }
    (WORK / "last-run.json").write_text(json.dumps(saved, indent=1))
    report(saved, results_path)
    return 0


def report(saved: dict[str, Any], results_path: Path) -> None:
    """Print the tables and targets, and write the Markdown report, from a saved run."""
    options = saved["options"]
    data = [Measurement(**m) for m in saved["measurements"]]
    s3 = saved["s3"]
    target_s3 = None if s3 is None else S3Target("", "", "", "", "", s3["part_size"], s3["part_concurrency"])
    verdicts = evaluate(data, targets(target_s3), options["runs"])
    names = options["workloads"].split(",")
    descriptions = {n: workload(n, options["quick"]).description for n in names}
    print()
    print(render(data, verdicts, options["runs"], descriptions, markdown=False))
    print(issue27.section(data, options["runs"], descriptions, markdown=False))
    body = render(data, verdicts, options["runs"], descriptions, markdown=True)
    body += "\n" + issue27.section(data, options["runs"], descriptions, markdown=True)
    write_results(results_path, body, saved["about"], options)
    print(f"bench: wrote {results_path} ({saved['about'].get('benchmark wall time', '?')})")


def write_results(path: Path, body: str, about: dict[str, str], options: dict[str, Any]) -> None:
    notes = ""
    if path.exists() and NOTES_MARKER in path.read_text():
        notes = path.read_text().split(NOTES_MARKER, 1)[1]
    flags = [f for f in ("quick", "targets") if options.get(f)]
    command = "make bench" + (f" ({', '.join('--' + f for f in flags)})" if flags else "")
    s3_note = options.get("s3_note", "")
    lines = [
        "# tusd-py benchmark results",
        "",
        f"Written by `{command}` (bench/run.py, {options['runs']} runs of every workload; "
        f"workloads: {options['workloads']}). See bench/README.md for how to read it.",
        "Every server ran fresh per workload and run, on 127.0.0.1, against the same one-process asyncio client.",
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in about.items()),
        *([f"- {s3_note}"] if s3_note else []),
        "",
        "## Results",
        "",
        body,
        NOTES_MARKER,
    ]
    path.write_text("\n".join(lines) + (notes if notes else "\n"))


if __name__ == "__main__":
    sys.exit(main())
