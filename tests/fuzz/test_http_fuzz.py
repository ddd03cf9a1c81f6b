"""Property-based raw-socket fuzzing of every tus endpoint, header and the Recordings API.

Each example is one request from :mod:`tests.fuzz.strategies` against a real server on a real
socket, followed by a sentinel on the same connection (see :mod:`tests.fuzz.runner` for the
contract). The ``@example`` cases pin reproducers of bugs found by this fuzzer.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, seed

from tests.fuzz import strategies as s
from tests.fuzz.conftest import fuzz_settings
from tests.fuzz.runner import Server, run

pytestmark = [pytest.mark.fuzz_long, pytest.mark.timeout(3600)]


def _plan(
    method: str, target: str, *headers: tuple[str, str], setup: s.Setup = "finished", body: bytes = b""
) -> s.Plan:
    return s.Plan(
        setup, method, target, (("Tus-Resumable", "1.0.0"), ("Authorization", s.TOKEN), *headers), body, "exact"
    )


# Reproducers of bugs this fuzzer found; each runs on every run, before the random examples.
PINNED = [
    _plan("GET", "/healthz"),
]


def test_http_fuzz(fuzz_server: Server, fuzz_seed: int | None, request: pytest.FixtureRequest) -> None:
    @fuzz_settings(request.config)
    @given(plan=s.plans)
    def fuzz(plan: s.Plan) -> None:
        run(fuzz_server, plan)

    for plan in PINNED:
        fuzz = example(plan=plan)(fuzz)
    if fuzz_seed is not None:
        fuzz = seed(fuzz_seed)(fuzz)
    fuzz()
