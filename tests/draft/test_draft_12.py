"""What draft -12 (interop version 9) changed for a server, over the wire, on the filesystem and S3
with auth on: GET retrieves the offset, a completed upload's final response is replayed, a wrong
offset is 409 with ``Upload-Complete: ?0`` whatever the upload's state. And what stays as it was
for version 8 (the tus download on GET, the completed-upload problem)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.client.raw import Exchange, exchange
from tests.client.tus import id_of, path_of
from tests.draft.conftest import DraftServer, draft_config, serve
from tusd_py.hooks import HookEvent, HookRejection
from tusd_py.protocol.draft_decisions import COMPLETED_UPLOAD, MISMATCHING_OFFSET

V9 = {"Upload-Draft-Interop-Version": "9"}
V8 = {"Upload-Draft-Interop-Version": "8"}
PARTIAL = {"Content-Type": "application/partial-upload"}


async def _created(server: DraftServer, version: dict[str, str], *, complete: bool, body: bytes = b"hello") -> str:
    fields = {**version, "Upload-Complete": "?1" if complete else "?0", "Upload-Length": "5", **server.auth()}
    created = await exchange(server.port, "POST", "/files/", fields, body)
    assert created.status == 201, created.body
    return path_of(created.headers["location"])


async def _append(server: DraftServer, path: str, version: dict[str, str], offset: int, body: bytes = b"") -> Exchange:
    fields = {**version, **PARTIAL, "Upload-Complete": "?1", "Upload-Offset": str(offset), **server.auth()}
    return await exchange(server.port, "PATCH", path, {**fields, "Content-Length": str(len(body))}, body)


async def test_v9_get_retrieves_the_offset_like_head(draft_server: DraftServer) -> None:
    path = await _created(draft_server, V9, complete=False, body=b"he")
    get = await exchange(draft_server.port, "GET", path, {**V9, **draft_server.auth()})
    head = await exchange(draft_server.port, "HEAD", path, {**V9, **draft_server.auth()})
    assert get.status == head.status == 204 and get.body == b""
    for name in ("upload-offset", "upload-complete", "upload-length", "cache-control", "upload-draft-interop-version"):
        assert get.headers[name] == head.headers[name], name
    assert get.headers["upload-offset"] == "2" and get.headers["upload-complete"] == "?0"
    assert "upload-limit" in get.headers
    other = await exchange(draft_server.port, "GET", path, {**V9, **draft_server.auth("bob")})
    assert other.status == 404  # the same owner check as HEAD


async def test_v8_get_stays_the_tus_download(draft_server: DraftServer) -> None:
    path = await _created(draft_server, V8, complete=True)
    download = await exchange(draft_server.port, "GET", path, {**V8, **draft_server.auth()})
    assert download.status == 200 and download.body == b"hello"
    assert "upload-offset" not in download.headers


async def test_v9_replays_the_final_response_of_a_completed_upload(draft_server: DraftServer) -> None:
    path = await _created(draft_server, V9, complete=True)
    replay = await _append(draft_server, path, V9, 5)
    assert replay.status == 204, replay.body
    assert replay.headers["upload-complete"] == "?1" and replay.headers["upload-offset"] == "5"
    assert draft_server.finished == [id_of(path)]  # finished once, not again
    wrong = await _append(draft_server, path, V9, 3)
    assert wrong.status == 409 and wrong.headers["upload-complete"] == "?0"
    assert json.loads(wrong.body)["type"] == MISMATCHING_OFFSET and wrong.headers["upload-offset"] == "5"
    more = await _append(draft_server, path, V9, 5, b"!")
    assert more.status == 400 and more.headers["upload-complete"] == "?0"  # a protocol error, not processing
    download = await draft_server.client.get(path, headers=draft_server.auth())
    assert await download.read() == b"hello"


async def test_v8_refuses_an_append_to_a_completed_upload_as_before(draft_server: DraftServer) -> None:
    path = await _created(draft_server, V8, complete=True)
    refused = await _append(draft_server, path, V8, 3)
    assert refused.status == 400 and json.loads(refused.body)["type"] == COMPLETED_UPLOAD
    assert refused.headers["upload-complete"] == "?1"  # -11: the upload's state


async def test_no_replay_where_a_pre_finish_hook_may_have_refused_the_upload(tmp_path: Path) -> None:
    """The final response of a refused upload was the hook's; the server does not pretend it was a 204."""

    async def refuse(event: HookEvent) -> HookRejection | None:
        return HookRejection(409, "virus found")

    async with serve(draft_config(tmp_path), pre_finish=refuse) as server:
        fields = {**V9, "Upload-Complete": "?1", "Upload-Length": "5", **server.auth()}
        created = await exchange(server.port, "POST", "/files/", fields, b"hello")
        assert created.status == 409 and created.headers["upload-complete"] == "?1"  # from processing
        path = path_of(created.headers["location"])
        again = await _append(server, path, V9, 5)
        assert again.status == 400 and again.headers["upload-complete"] == "?0"
        assert "replayed" in json.loads(again.body)["detail"]
        assert server.finished == []
