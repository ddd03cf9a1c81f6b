"""Where tusd-py spends its time in one workload: py-spy on a fresh server.

    .venv/bin/python bench/profile.py --workload small [--storage fs|s3] [--quick] [--gil]

Installs nothing: needs ``py-spy`` in the project venv (``.venv/bin/pip install py-spy``). Starts
tusd-py like the benchmark does, samples it with ``py-spy record --format raw`` while
bench/client.py drives the workload, then prints the hottest frames by self and by inclusive
share of samples. ``--gil`` keeps only samples holding the GIL: if the event loop thread holds
it much less than 100% of the wall time, the server is waiting (on threads, a lock, disk), not
computing. The raw stacks stay in bench/.work/profile-<workload>.txt for a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import scaleout
from servers import BENCH, FS_PEERS, REPO, S3_PEERS, WORK, RunningServer

FRAME = re.compile(r"(?P<func>.*) \((?P<file>.*?)(?::\d+)?\)$")


def short(frame: str) -> str:
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"].split("site-packages/")[-1].split(str(REPO) + "/")[-1]
    return f"{match['func']} ({path})"


def summarize(raw: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    loop_samples = total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [short(f) for f in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
        if any("_serve (tusd_py/server/cli.py)" in f for f in frames):
            loop_samples += samples
    if not total:
        return "no samples"
    lines = [f"{total} samples, {100 * loop_samples / total:.0f}% of them on the event loop thread", "-- self"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines += ["-- inclusive"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", default="conc16")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--gil", action="store_true", help="only samples that hold the GIL")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--storage", choices=("fs", "s3"), default="fs", help="s3: a fresh SeaweedFS, as make bench")
    parser.add_argument("--server", default="tusd-py", help="a tusd-py row of the bench, e.g. 'tusd-py x2' (fs)")
    args = parser.parse_args()
    py_spy = REPO / ".venv/bin/py-spy"
    if not py_spy.exists():
        parser.error("py-spy is not installed: .venv/bin/pip install py-spy")
    WORK.mkdir(parents=True, exist_ok=True)
    raw = WORK / f"profile-{args.storage}-{args.workload}.txt"
    data_dir = Path(os.environ.get("PROFILE_DIR", WORK / "data" / "profile"))
    shutil.rmtree(data_dir, ignore_errors=True)
    with contextlib.ExitStack() as stack:
        s3 = None
        if args.storage == "s3":
            from s3env import fresh_bucket, start_s3

            s3 = stack.enter_context(fresh_bucket(stack.enter_context(start_s3(WORK)), "profile"))
        if args.server in (scaleout.REDIS_PG, scaleout.REDIS_PG_X2):  # Redis and PostgreSQL, as make bench
            stack.enter_context(scaleout.engines(WORK))
        peers = [*(S3_PEERS if s3 is not None else FS_PEERS), *scaleout.PEERS.values()]
        subject = next(p for p in peers if p.name == args.server and p.backend == args.storage)
        server = RunningServer(subject, data_dir, WORK / "profile-server.log", s3)
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        stack.callback(server.stop)
        _record(server, py_spy, raw, args)
    print(summarize(raw, args.top))
    return 0


def _record(server: RunningServer, py_spy: Path, raw: Path, args: argparse.Namespace) -> None:
    server.wait_ready()
    scaleout.settle(server.pid)  # every worker started
    spy_cmd = [str(py_spy), "record", "--pid", str(server.pid), "--rate", str(args.rate), "--format", "raw"]
    spy_cmd += ["-o", str(raw), "--nonblocking", "--subprocesses", *(["--gil"] if args.gil else [])]
    spy = subprocess.Popen(spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    client = [sys.executable, str(BENCH / "client.py"), "--url", server.url, "--workload", args.workload]
    client += ["--verify", "none", *(["--quick"] if args.quick else [])]
    out = subprocess.run(client, capture_output=True, text=True, timeout=900, check=False)
    print(out.stdout.strip() or out.stderr.strip())
    spy.send_signal(signal.SIGINT)
    spy.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
