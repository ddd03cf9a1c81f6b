"""Fuzz fixtures: one real server with auth off and one with auth on, and the hypothesis profiles.

Profiles: each fuzz test runs once per profile (the ``fuzz_profile`` fixture): ``quick``, part of
``make test``, and ``long``, marked ``fuzz_long`` and deselected by pyproject.toml's ``addopts``
(``-m "not fuzz_long"``), so it runs only when asked for: ``pytest -m fuzz_long tests/fuzz``.
``TUSD_PY_FUZZ_EXAMPLES=N`` sets any count. With ``CI=true`` the examples are derandomized so a
CI run is reproducible; otherwise each run draws a fresh seed and prints it
(``TUSD_PY_FUZZ_SEED=<seed>`` replays it).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz.runner import SECRET, Server
from tests.fuzz.server import serve
from tusd_py.config.values import Config

QUICK_EXAMPLES = 150
LONG_EXAMPLES = 3000

settings.register_profile(
    "tusd-fuzz",
    deadline=None,
    database=None,  # reproducibility comes from the seed, not from a local example store
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    derandomize=os.environ.get("CI", "").lower() == "true",
    print_blob=True,
)


@pytest.fixture(params=["quick", pytest.param("long", marks=pytest.mark.fuzz_long)])
def fuzz_profile(request: pytest.FixtureRequest) -> str:
    """The profile of this run of a fuzz test; the ``long`` one carries the ``fuzz_long`` marker."""
    return str(request.param)


def fuzz_examples(profile: str, scale: float = 1.0) -> int:
    """How many examples each fuzz test runs: the env var, else the long or the quick profile."""
    if os.environ.get("TUSD_PY_FUZZ_EXAMPLES"):
        return int(os.environ["TUSD_PY_FUZZ_EXAMPLES"])
    return max(1, int((LONG_EXAMPLES if profile == "long" else QUICK_EXAMPLES) * scale))


def fuzz_settings(profile: str, scale: float = 1.0) -> settings:
    return settings(settings.get_profile("tusd-fuzz"), max_examples=fuzz_examples(profile, scale))


@pytest.fixture(scope="session")
def fuzz_seed() -> int | None:
    """The seed of this run (None when derandomized); printed so that a failure can be replayed."""
    if settings.get_profile("tusd-fuzz").derandomize:
        return None
    seed = int(os.environ.get("TUSD_PY_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    print(f"fuzz seed {seed}: replay with TUSD_PY_FUZZ_SEED={seed}")
    return seed


def fuzz_config(root: Path, **overrides: object) -> Config:
    settings_: dict[str, object] = {
        "storage_dir": str(root / "data"),
        "max_size": 1024 * 1024,
        "lock_timeout": 0.5,
        "body_idle_timeout": 5.0,
        "workers": 1,
        "job_retry_delay": 0.01,
        "sweep_interval": 0,
        "cleanup_interval": 0,
        # Every example creates uploads; limits high enough that setup never hits them.
        "quota_bytes": 10**12,
        "quota_unfinished": 10**6,
        "log_level": "warning",
        **overrides,
    }
    return Config(**settings_)  # type: ignore[arg-type]


@pytest.fixture(scope="session", params=["auth-off", "auth-on"])
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with _server(tmp_path_factory, auth=request.param == "auth-on") as server:
        yield server


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with _server(tmp_path_factory, auth=True) as server:
        yield server


@contextmanager
def _server(tmp_path_factory: pytest.TempPathFactory, *, auth: bool) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz-auth-on" if auth else "fuzz-auth-off")
    with serve(fuzz_config(root, jwt_secret=SECRET if auth else None)) as address:
        yield Server(address, auth)
