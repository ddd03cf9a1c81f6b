"""`make test`'s conformance step: run the suite against tusd-py itself, on each configuration.

Starts each server with the real CLI on a free loopback port, runs every check, stops it by PID,
and prints the combined "N passed, M failed" line. Exit status 1 if any check failed.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from conformance.client import Client
from conformance.live_server import LiveServer
from conformance.runner import Outcome, print_outcome, run_checks, summary


def configurations() -> list[tuple[str, tuple[str, ...]]]:
    return [
        ("filesystem", ("--max-size", str(1024 * 1024 * 1024))),
    ]


def main() -> int:
    everything: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="tusd-py-conformance-") as tmp:
        for name, args in configurations():
            print(f"== conformance: tusd-py, {name} ==", flush=True)
            server = LiveServer(Path(tmp) / name / "data", *args)
            with server:
                outcomes = run_checks(Client(server.url), print_outcome)
            print(f"{name}: {summary(outcomes)}", flush=True)
            everything.extend(outcomes)
    print(summary(everything))
    return 1 if any(o.status == "fail" for o in everything) else 0


if __name__ == "__main__":
    sys.exit(main())
