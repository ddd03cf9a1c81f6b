"""``serve --processes N``: the refusal without the shared engines and the restart backoff. The
supervised workers themselves: tests/scale/test_processes_live.py."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.live_server import free_port
from tusd_py.server.processes import MAX_RESTART_DELAY, RESTART_DELAY, restart_delay


def _start(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tusd_py", "serve", "--host", "127.0.0.1", "--port", str(free_port()), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUSD_PY_")}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)


@pytest.mark.slow  # the real CLI in a child process
@pytest.mark.parametrize(
    ("extra", "missing"),
    [
        ((), "--redis-url and --database-url"),
        (("--redis-url", "redis://127.0.0.1:1/0"), "--database-url"),
        (("--database-url", "postgresql://127.0.0.1:1/x"), "--redis-url"),
    ],
)
def test_more_than_one_process_needs_redis_and_postgres(tmp_path: Path, extra: tuple[str, ...], missing: str) -> None:
    done = _start("--storage-dir", str(tmp_path), "--processes", "2", *extra)
    assert done.returncode == 2
    said = [line for line in done.stderr.splitlines() if line.startswith("tusd-py:")]
    assert said == [
        f"tusd-py: cannot start: --processes 2 needs {missing}: worker processes share upload locks through "
        "Redis and recordings, jobs and quotas through PostgreSQL; give both or use --processes 1"
    ]
    assert '"serving"' not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow  # the real CLI in a child process
def test_processes_must_be_a_positive_count(tmp_path: Path) -> None:
    done = _start("--storage-dir", str(tmp_path), "--processes", "0")
    assert done.returncode == 2
    assert "--processes (env TUSD_PY_PROCESSES): must be between 1 and 256" in done.stderr


def test_restart_delay_doubles_and_is_bounded() -> None:
    delays = [restart_delay(n) for n in range(1, 12)]
    assert delays[0] == RESTART_DELAY
    assert all(b == min(MAX_RESTART_DELAY, 2 * a) for a, b in itertools.pairwise(delays))
    assert max(delays) == MAX_RESTART_DELAY
