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

pytestmark = pytest.mark.timeout(3600)


def _plan(
    method: str, target: str, *headers: tuple[str, str], setup: s.Setup = "finished", auth: bool = True
) -> s.Plan:
    credentials = (("Authorization", s.TOKEN),) if auth else ()
    return s.Plan(setup, method, target, (("Tus-Resumable", "1.0.0"), *credentials, *headers), b"", "exact")


UPLOAD = f"/files/{s.ID}"
# Reproducers of bugs this fuzzer found (or that were reported for the same contract); each runs
# on every run, before the random examples.
PINNED = [
    # Auth on: wire OPTIONS skips authentication, the override makes it a DELETE of someone's upload.
    _plan("OPTIONS", UPLOAD, ("X-HTTP-Method-Override", "DELETE"), auth=False),
    _plan("OPTIONS", UPLOAD, ("X-HTTP-Method-Override", "PATCH"), auth=False, setup="new"),
    _plan("OPTIONS", UPLOAD, ("X-HTTP-Method-Override", "GET"), auth=False),
    # HEAD on the wire, GET by override: the body of the GET follows a HEAD response (desync).
    _plan("HEAD", UPLOAD, ("X-HTTP-Method-Override", "GET")),
    # The reverse: GET on the wire, HEAD by override.
    _plan("GET", UPLOAD, ("X-HTTP-Method-Override", "HEAD")),
    # Range with more digits than int() parses (Python's 4300-digit limit): a 500.
    _plan("GET", UPLOAD, ("Range", "bytes=" + "9" * 5000 + "-")),
    _plan("GET", UPLOAD, ("Range", "bytes=0-" + "9" * 5000)),
    # Metadata of several KiB in one value.
    _plan("POST", "/files/", ("Upload-Length", "5"), ("Upload-Metadata", "filename " + "bW" * 3000), setup="none"),
    # CR/LF in filename and filetype must not reach the download's response headers.
    _plan("GET", UPLOAD, setup="evil_meta"),
    _plan("HEAD", UPLOAD, setup="evil_meta"),
    # Recordings API: the cursor nit (cursor=0 fitted the document yet got 400; now the document refuses it).
    _plan("GET", "/api/recordings?cursor=0", setup="none"),
]


def test_http_fuzz(fuzz_server: Server, fuzz_seed: int | None, fuzz_profile: str) -> None:
    @fuzz_settings(fuzz_profile)
    @given(plan=s.plans)
    def fuzz(plan: s.Plan) -> None:
        run(fuzz_server, plan)

    for plan in PINNED:
        fuzz = example(plan=plan)(fuzz)
    if fuzz_seed is not None:
        fuzz = seed(fuzz_seed)(fuzz)
    fuzz()
