"""`make test`'s conformance step: run the suite against tusd-py itself, on each configuration.

Starts each server with the real CLI on a free loopback port, runs every check, stops it by PID,
and prints the combined "N passed, M failed" line. Exit status 1 if any check failed.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from pathlib import Path

from conformance.client import Client
from conformance.live_server import LiveServer
from conformance.runner import Outcome, print_outcome, run_checks, summary

SELFTEST_SECRET = secrets.token_urlsafe(48)


def configurations() -> list[tuple[str, tuple[str, ...], dict[str, str]]]:
    """(name, server flags, headers every request carries)."""
    gib = str(1024 * 1024 * 1024)
    return [
        ("filesystem", ("--max-size", gib), {}),
        (
            "filesystem, JWT auth on",
            ("--max-size", gib, "--jwt-secret", SELFTEST_SECRET, "--quota-bytes", "0", "--quota-unfinished", "0"),
            {"Authorization": f"Bearer {_token()}"},
        ),
    ]


def _token() -> str:
    from tusd_py.auth import AuthConfig, mint_dev_token

    return mint_dev_token(AuthConfig(enabled=True, secret=SELFTEST_SECRET), "conformance", ttl=3600)


def main() -> int:
    everything: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="tusd-py-conformance-") as tmp:
        for index, (name, args, headers) in enumerate(configurations()):
            print(f"== conformance: tusd-py, {name} ==", flush=True)
            server = LiveServer(Path(tmp) / f"run{index}" / "data", *args)
            with server:
                outcomes = run_checks(Client(server.url, headers), print_outcome)
            print(f"{name}: {summary(outcomes)}", flush=True)
            everything.extend(outcomes)
    print(summary(everything))
    return 1 if any(o.status == "fail" for o in everything) else 0


if __name__ == "__main__":
    sys.exit(main())
