"""``serve --processes N``: its argument and the restart backoff. The supervised workers
themselves: tests/scale/test_processes_live.py (Redis and PostgreSQL) and
tests/scale/test_processes_embedded.py (neither)."""

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
def test_processes_must_be_a_positive_count(tmp_path: Path) -> None:
    done = _start("--storage-dir", str(tmp_path), "--processes", "0")
    assert done.returncode == 2
    assert "--processes (env TUSD_PY_PROCESSES): must be between 1 and 256" in done.stderr


def test_restart_delay_doubles_and_is_bounded() -> None:
    delays = [restart_delay(n) for n in range(1, 12)]
    assert delays[0] == RESTART_DELAY
    assert all(b == min(MAX_RESTART_DELAY, 2 * a) for a, b in itertools.pairwise(delays))
    assert max(delays) == MAX_RESTART_DELAY
