"""``--processes auto``: one worker per core this process may use (affinity, cgroup CPU quota)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tusd_py.config.cores import available_cores
from tusd_py.server.cli import load_config, parse_args


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        (None, None),  # no cgroup file: the affinity
        ("max 100000\n", None),  # no quota
        ("50000 100000\n", 1),  # half a core: still one worker
        ("150000 100000\n", 2),  # 1.5 cores: two workers share them
        ("100000000 100000\n", None),  # a quota above the CPUs: the affinity
    ],
)
def test_available_cores_is_the_affinity_bounded_by_the_cgroup_quota(
    tmp_path: Path, cpu_max: str | None, expected: int | None
) -> None:
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert available_cores(path) == (affinity if expected is None else min(affinity, expected))


def test_processes_auto_on_the_command_line_and_in_the_environment() -> None:
    cores = available_cores()
    assert load_config(parse_args(["--processes", "auto"]), {}).processes == cores
    assert load_config(parse_args([]), {"TUSD_PY_PROCESSES": "Auto"}).processes == cores
    assert load_config(parse_args(["--processes", "3"]), {}).processes == 3
