"""The draft's rules over HTTP (filesystem, auth on): the gate, interim responses, limits, problem
documents, and a draft upload seen as the tus upload it also is."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.client.raw import Connection, exchange, raw_exchange
from tests.client.tus import TUS, id_of, path_of
from tests.draft.conftest import MAX_SIZE, QUOTA, DraftServer, draft_config, serve, stored
from tusd_py.protocol.draft_decisions import COMPLETED_UPLOAD, INCONSISTENT_LENGTH
from tusd_py.protocol.draft_fields import parse_limits
from tusd_py.telemetry.metrics import REGISTRY

V = {"Upload-Draft-Interop-Version": "8"}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[DraftServer]:
    async with serve(draft_config(tmp_path)) as running:
        yield running


async def create(server: DraftServer, body: bytes, **fields: str) -> tuple[str, dict[str, str]]:
    headers = {**V, "Upload-Complete": "?0", **server.auth(), **{k.replace("_", "-"): v for k, v in fields.items()}}
    result = await exchange(server.port, "POST", "/files/", headers, body)
    assert result.status == 201, result.body
    return path_of(result.headers["location"]), result.headers


@pytest.mark.parametrize("method", ["POST", "HEAD", "PATCH", "DELETE"])
async def test_every_draft_operation_needs_a_token(server: DraftServer, method: str) -> None:
    upload, _ = await create(server, b"ab", Upload_Length="10")
    target = "/files/" if method == "POST" else upload
    fields = {**V, "Upload-Complete": "?1", "Upload-Offset": "2", "Content-Type": "application/partial-upload"}
    result = await exchange(server.port, method, target, fields, b"xyz")
    assert result.status == 401
    assert result.interim == []  # no 104 before the gate said yes
    bob = await exchange(server.port, method, target, {**fields, **server.auth("bob")}, b"xyz")
    if method != "POST":
        assert bob.status == 404  # alice's upload does not exist for bob
    assert (await stored(server, id_of(upload))).offset == 2


async def test_options_is_public_and_names_the_limits(server: DraftServer) -> None:
    result = await exchange(server.port, "OPTIONS", "/files/", V)
    assert result.status == 204
    assert parse_limits(result.headers["upload-limit"]) == {"max-size": MAX_SIZE, "min-size": 0}
    assert "resumable-upload-draft" not in result.headers["tus-extension"]  # not a tus extension
    tus = await server.client.options("/files/")
    assert "Upload-Limit" not in tus.headers  # tus responses unchanged


async def test_an_unknown_version_gets_a_problem_and_no_104(server: DraftServer) -> None:
    fields = {"Upload-Draft-Interop-Version": "10", "Upload-Complete": "?1", **server.auth()}
    result = await exchange(server.port, "POST", "/files/", fields, b"hello")
    assert result.status == 400 and result.interim == []
    assert result.headers["content-type"].startswith("application/problem+json")
    assert "3, 4, 5, 6, 7, 8, 9" in json.loads(result.body)["detail"]


async def test_http10_gets_no_interim_response(server: DraftServer) -> None:
    fields = {**V, "Upload-Complete": "?1", "Content-Length": "5", **server.auth()}
    head = "POST /files/ HTTP/1.0\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    received = await raw_exchange(server.port, head.encode("latin-1") + b"\r\n" + b"hello")
    assert received.startswith(b"HTTP/1.0 201 ") and b" 104 " not in received


async def test_104_comes_after_the_100_continue_the_client_asked_for(server: DraftServer) -> None:
    fields = {**V, "Upload-Complete": "?1", "Expect": "100-continue", **server.auth()}
    result = await exchange(server.port, "POST", "/files/", fields, b"hello")
    assert result.status == 201
    assert [code for code, _ in result.interim] == [100, 104]


async def test_upload_limit_max_size_follows_the_flag_and_the_quota(server: DraftServer, tmp_path: Path) -> None:
    _, headers = await create(server, b"", Upload_Length="100")
    limits = parse_limits(headers["upload-limit"])
    assert limits["max-size"] == QUOTA  # the quota is tighter than --max-size; this upload's 100 included
    assert 604_800 - 5 <= limits["max-age"] <= 604_800  # --expire-after's 7 days, counted from now
    async with serve(draft_config(tmp_path / "b", quota_bytes=0, expire_after=0)) as unlimited:
        _, headers = await create(unlimited, b"", Upload_Length="100")
        assert parse_limits(headers["upload-limit"]) == {"max-size": MAX_SIZE, "min-size": 0}


async def test_over_the_limit_is_413_with_the_limits(server: DraftServer) -> None:
    fields = {**V, "Upload-Complete": "?0", "Upload-Length": str(QUOTA + 1), **server.auth()}
    result = await exchange(server.port, "POST", "/files/", fields)
    assert result.status == 413
    assert parse_limits(result.headers["upload-limit"])["max-size"] == QUOTA
    assert json.loads(result.body)["status"] == 413


async def test_lengths_must_agree(server: DraftServer) -> None:
    fields = {**V, "Upload-Complete": "?1", "Upload-Length": "9", **server.auth()}
    result = await exchange(server.port, "POST", "/files/", fields, b"hello")
    assert result.status == 400 and json.loads(result.body)["type"] == INCONSISTENT_LENGTH


async def test_a_completed_upload_takes_nothing_more(server: DraftServer) -> None:
    fields = {**V, "Upload-Complete": "?1", **server.auth()}
    done = await exchange(server.port, "POST", "/files/", fields, b"hello")
    path = path_of(done.headers["location"])
    append = {**V, "Upload-Complete": "?1", "Upload-Offset": "5", "Content-Type": "application/partial-upload"}
    result = await exchange(server.port, "PATCH", path, {**append, **server.auth()})
    assert result.status == 400 and json.loads(result.body)["type"] == COMPLETED_UPLOAD
    result = await exchange(server.port, "PATCH", path, {**append, **server.auth()}, b"more")
    assert result.status == 400 and json.loads(result.body)["type"] == INCONSISTENT_LENGTH


async def test_v6_appends_must_be_partial_upload(server: DraftServer) -> None:
    path, _ = await create(server, b"ab", Upload_Length="5")
    fields = {"Upload-Draft-Interop-Version": "6", "Upload-Complete": "?1", "Upload-Offset": "2", **server.auth()}
    result = await exchange(server.port, "PATCH", path, {**fields, "Content-Type": "application/octet-stream"}, b"cde")
    assert result.status == 415
    result = await exchange(
        server.port, "PATCH", path, {**fields, "Content-Type": "application/partial-upload"}, b"cde"
    )
    assert result.status == 201 and result.headers["upload-complete"] == "?1"


async def test_unknown_length_is_declared_by_the_completing_request(server: DraftServer) -> None:
    path, headers = await create(server, b"abc")  # Upload-Complete: ?0 and no Upload-Length
    assert headers["upload-offset"] == "3"
    fields = {**V, "Upload-Complete": "?1", "Upload-Offset": "3", "Content-Type": "application/partial-upload"}
    result = await exchange(server.port, "PATCH", path, {**fields, **server.auth()}, b"defg")
    assert result.status == 204 and result.headers["upload-length"] == "7"
    assert await (await server.client.get(path, headers=server.auth())).read() == b"abcdefg"


async def test_a_draft_upload_is_a_tus_upload(server: DraftServer) -> None:
    fields = {**V, "Upload-Complete": "?1", "Content-Type": "audio/ogg", **server.auth()}
    fields["Content-Disposition"] = 'inline; filename="memo.ogg"'
    result = await exchange(server.port, "POST", "/files/", fields, b"OggS-not-really")
    path = path_of(result.headers["location"])
    head = await server.client.head(path, headers={**TUS, **server.auth()})
    assert head.status == 200 and head.headers["Upload-Offset"] == "15" and head.headers["Upload-Length"] == "15"
    assert "filename" in head.headers["Upload-Metadata"]
    get = await server.client.get(path, headers=server.auth())
    assert get.headers["Content-Type"] == "audio/ogg" and "memo.ogg" in get.headers["Content-Disposition"]
    upload_id = id_of(path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the recording reaches processing through the same pipeline
        recording = await (await server.client.get(f"/api/recordings/{upload_id}", headers=server.auth())).json()
        if recording["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.05)
    assert recording["filename"] == "memo.ogg"
    assert server.finished == [upload_id]
    assert server.events[0][1]["metadata"]["filename"] == "memo.ogg"


async def open_creation(server: DraftServer, sent: bytes, total: int) -> tuple[Connection, str]:
    """A creation that sent its first bytes and then went quiet, its connection left open (a
    half-open connection on a flaky network, as the server sees it); returns the upload's path."""
    conn = await Connection.open(server.port)
    fields = {**V, "Upload-Complete": "?1", "Content-Length": str(total), **server.auth()}
    await conn.request("POST", "/files/", fields, sent, send=len(sent))
    interim = (await conn.response(stop_at_interim=True)).interim_of(104)
    assert interim, "no 104"
    return conn, path_of(interim[0]["location"])


def _lock_timeouts() -> float:
    return REGISTRY.get_sample_value("tusd_py_lock_timeouts_total") or 0.0


async def test_head_takes_over_a_quiet_creation(server: DraftServer) -> None:
    conn, path = await open_creation(server, b"abc", 10)
    try:
        timeouts = _lock_timeouts()
        head = await exchange(server.port, "HEAD", path, {**V, **server.auth()})
        # What the quiet request held in memory: stored when it let go (a write batch or an S3 part
        # would have kept those 3 bytes until the body ended), and no lock wait gave up on the way.
        assert head.status == 204 and head.headers["upload-offset"] == "3"
        assert _lock_timeouts() == timeouts  # handed over, not the lock timeout
        answer = await conn.response()
        assert answer.status is None or answer.status == 423
    finally:
        await conn.aclose()
    rest = {**V, "Upload-Complete": "?1", "Upload-Offset": "3", "Content-Type": "application/partial-upload"}
    done = await exchange(server.port, "PATCH", path, {**rest, **server.auth()}, b"defghij")
    assert done.status == 204
    assert await (await server.client.get(path, headers=server.auth())).read() == b"abcdefghij"


async def test_cancellation_ends_the_request_still_writing(server: DraftServer) -> None:
    conn, path = await open_creation(server, b"ab", 100)
    try:
        result = await exchange(server.port, "DELETE", path, {**V, **server.auth()})
        assert result.status == 204
        answer = await conn.response()  # the writing request was ended
        assert answer.status is None or answer.status >= 400
    finally:
        await conn.aclose()
    head = await exchange(server.port, "HEAD", path, {**V, **server.auth()})
    assert head.status == 404


async def test_append_size_limits_are_announced_and_held(tmp_path: Path) -> None:
    async with serve(draft_config(tmp_path, max_append_size=8, min_append_size=3)) as server:
        path, headers = await create(server, b"abcd", Upload_Length="18")
        limits = parse_limits(headers["upload-limit"])
        assert limits["max-append-size"] == 8 and limits["min-append-size"] == 3 and limits["min-size"] == 0
        fields = {**V, "Upload-Offset": "4", "Content-Type": "application/partial-upload", **server.auth()}
        big = await exchange(server.port, "PATCH", path, {**fields, "Upload-Complete": "?0"}, b"x" * 9)
        assert big.status == 413 and parse_limits(big.headers["upload-limit"])["max-append-size"] == 8
        small = await exchange(server.port, "PATCH", path, {**fields, "Upload-Complete": "?0"}, b"xy")
        assert small.status == 400 and "min-append-size" in json.loads(small.body)["detail"]
        assert (await exchange(server.port, "PATCH", path, {**fields, "Upload-Complete": "?0"}, b"efgh")).status == 204
        fields["Upload-Offset"] = "8"
        rest = b"ijklmnopqrst"[:8]
        assert (await exchange(server.port, "PATCH", path, {**fields, "Upload-Complete": "?0"}, rest)).status == 204
        fields["Upload-Offset"] = "16"
        # 2 bytes, below min-append-size, but a completing request is exempt
        done = await exchange(server.port, "PATCH", path, {**fields, "Upload-Complete": "?1"}, b"uv")
        assert done.status == 204 and done.headers["upload-complete"] == "?1"


async def test_an_expired_draft_upload_is_gone(tmp_path: Path) -> None:
    async with serve(draft_config(tmp_path, expire_after=1, sweep_interval=0)) as server:
        path, headers = await create(server, b"ab", Upload_Length="10")
        assert parse_limits(headers["upload-limit"])["max-age"] <= 1
        await asyncio.sleep(1.5)  # past the expiry: the upload has been idle longer than --expire-after
        head = await exchange(server.port, "HEAD", path, {**V, **server.auth()})
        assert head.status == 410
        assert head.headers["content-type"].startswith("application/problem+json")


async def test_disable_extensions_turns_the_draft_off(tmp_path: Path) -> None:
    async with serve(draft_config(tmp_path, disabled_extensions=["resumable-upload-draft"])) as server:
        fields = {**V, "Upload-Complete": "?1", **server.auth()}
        result = await exchange(server.port, "POST", "/files/", fields, b"hello")
        assert result.status == 412 and result.interim == []  # a tus server's answer: no Tus-Resumable
        options = await exchange(server.port, "OPTIONS", "/files/", V)
        assert "upload-limit" not in options.headers and "upload-draft-interop-version" not in options.headers
