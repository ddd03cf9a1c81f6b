"""What a test does when a real part it needs (SeaweedFS, PostgreSQL, nginx, Redis, chromium, node,
ffmpeg) is missing: under ``CI=true`` it fails, elsewhere it is skipped, naming the part.

A CI run that skipped a whole subsystem because a binary was absent would be green while testing
nothing there; on a developer's machine a skip that says what to install is the useful answer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NoReturn

import pytest

# The session fixtures of tests/conftest.py that start a real part, and the markers a test using one
# carries, so that ``-m "not postgres"`` (and ``make test-quick``) leaves out every test that starts
# PostgreSQL, however it reaches the fixture.
FIXTURE_MARKS: dict[str, tuple[str, ...]] = {
    "seaweed": ("s3",),
    "postgres": ("postgres",),
    "database_url": ("postgres",),
    "redis_server": ("redis",),
    "redis_url": ("redis",),
    "cluster": ("nginx", "postgres", "redis"),
}
# Parameters of the real-client suites that reach those fixtures through request.getfixturevalue.
PARAM_MARKS: dict[tuple[str, str], tuple[str, ...]] = {
    ("tus_backend", "s3"): ("s3",),
    ("tus_topology", "three behind nginx"): ("nginx", "postgres", "redis"),
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def part_missing(reason: str) -> NoReturn:
    """Fail under CI, else skip; ``reason`` names the part and how to install it."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a real part that cannot start fails the run)", pytrace=False)
    pytest.skip(reason)


def marks_for(fixtures: Iterable[str], params: dict[str, object]) -> set[str]:
    """The markers of the real parts a test starts, from the root fixtures it uses and its parameters."""
    marks = {mark for name in fixtures for mark in FIXTURE_MARKS.get(name, ())}
    for (name, value), extra in PARAM_MARKS.items():
        if params.get(name) == value:
            marks.update(extra)
    return marks
