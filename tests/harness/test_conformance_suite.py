"""The conformance suite can fail: against tusd-py with one spec rule broken on the wire, the checks
of that rule fail (and the self-test's "every check passed" verdict with them), while tusd-py as it
is passes every check. Each server is tusd-py in this process, its responses altered just before
they are sent (``on_response_prepare``), so the break is exactly one rule."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from conformance.client import Client
from conformance.runner import Outcome, run_checks
from conformance.selftest import not_passed
from tusd_py.config.values import Config
from tusd_py.protocol.draft_versions import VERSIONS
from tusd_py.server.app import make_app

Break = Callable[[web.Request, web.StreamResponse], None]


def omit_tus_resumable(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.popall("Tus-Resumable", None)


def wrong_head_offset(request: web.Request, response: web.StreamResponse) -> None:
    offset = response.headers.get("Upload-Offset")
    if request.method == "HEAD" and offset is not None:
        response.headers["Upload-Offset"] = str(int(offset) + 1)


def no_409_on_offset_mismatch(request: web.Request, response: web.StreamResponse) -> None:
    if response.status == 409:
        response.set_status(204)


async def _run_suite(  # type: ignore[no-untyped-def]
    aiohttp_server, tmp_path: Path, breaks: Break | None, **settings: object
) -> list[Outcome]:
    config = Config(storage_dir=str(tmp_path / "data"), max_size=64 * 1024 * 1024, workers=0, **settings)  # type: ignore[arg-type]
    app = make_app(config)
    if breaks is not None:

        async def alter(request: web.Request, response: web.StreamResponse) -> None:
            breaks(request, response)

        app.on_response_prepare.append(alter)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = Client(f"http://127.0.0.1:{server.port}/files/", timeout=10)
    # The checks use a blocking client: they run in a thread while the server runs on this loop.
    return await asyncio.to_thread(run_checks, client)


def _failed(outcomes: list[Outcome]) -> set[str]:
    return {outcome.name for outcome in outcomes if outcome.status == "fail"}


async def test_tusd_py_as_it_is_passes_every_check(aiohttp_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outcomes = await _run_suite(aiohttp_server, tmp_path, None)
    assert not_passed(outcomes) == [], [o for o in outcomes if o.status != "pass"]


@pytest.mark.parametrize(
    ("breaks", "must_fail"),
    [
        pytest.param(omit_tus_resumable, {"options-204", "responses-carry-tus-resumable"}, id="no-tus-resumable"),
        pytest.param(wrong_head_offset, {"head-fresh-upload", "patch-appends"}, id="wrong-head-offset"),
        pytest.param(no_409_on_offset_mismatch, {"patch-offset-409"}, id="no-409"),
    ],
)
async def test_a_server_breaking_a_rule_fails_its_checks(  # type: ignore[no-untyped-def]
    aiohttp_server, tmp_path: Path, breaks: Break, must_fail: set[str]
) -> None:
    outcomes = await _run_suite(aiohttp_server, tmp_path, breaks)
    assert must_fail <= _failed(outcomes), [o for o in outcomes if o.status == "fail"]
    assert set(not_passed(outcomes)) >= must_fail


async def test_checks_skipped_for_an_extension_not_advertised_are_not_a_pass(aiohttp_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outcomes = await _run_suite(aiohttp_server, tmp_path, None, disabled_extensions=["termination"])
    skipped = {outcome.name for outcome in outcomes if outcome.status == "skip"}
    # The draft's DELETE is a termination too (one switch for every protocol): skipped with it.
    cancels = {f"draft-v{n}-cancel" for n in VERSIONS}
    assert skipped == {"terminate", "terminate-override", *cancels}
    assert not _failed(outcomes)  # the runner alone would call this server conformant
    assert set(not_passed(outcomes)) == skipped  # the self-test does not
