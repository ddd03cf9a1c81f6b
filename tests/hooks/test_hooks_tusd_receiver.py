"""``--hooks-format tusd`` end to end: a receiver written for tusd (tests/hooks/tusd_receiver.py)
drives tusd-py through the real app: it rejects, renames and re-labels uploads in pre-create, adds
a header in pre-finish, stops an upload in post-receive, refuses a delete in pre-terminate, and
learns where a finished file is in post-finish, while tusd-py keeps its signatures and its outbox.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.client.tus import TUS, id_of, metadata, patch
from tests.hooks.hook_support import TUSD_HOOKS
from tests.hooks.tusd_receiver import TusdReceiver
from tusd_py.config.values import Config
from tusd_py.server.app import make_app

HOOK_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@pytest.fixture
async def receiver(aiohttp_server: Any) -> TusdReceiver:
    receiver = TusdReceiver(HOOK_SECRET)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    receiver.url = str(server.make_url("/hook"))
    return receiver


@pytest.fixture
async def client(aiohttp_client: Any, receiver: TusdReceiver, tmp_path: Path) -> TestClient:
    config = Config(
        storage_dir=str(tmp_path / "data"),
        workers=0,
        hooks_url=receiver.url,
        hooks_format="tusd",
        hooks_events=list(TUSD_HOOKS),
        hooks_secret=HOOK_SECRET,
        hooks_forward_headers=["X-Tenant"],
    )
    return await aiohttp_client(make_app(config))  # type: ignore[no-any-return]


async def create(client: TestClient, length: int, **meta: str) -> Any:
    headers = {**TUS, "Upload-Length": str(length), "X-Tenant": "acme", "Authorization": "Bearer not-for-the-outbox"}
    if meta:
        headers["Upload-Metadata"] = metadata(**meta)
    return await client.post("/files/", headers=headers)


async def test_pre_create_rejects_with_the_hooks_response(client: TestClient, receiver: TusdReceiver) -> None:
    resp = await create(client, 5)  # no filename
    assert resp.status == 400
    assert resp.headers["Content-Type"] == "application/json"
    assert await resp.json() == {"message": "no filename provided"}
    hook = receiver.of("pre-create")[0]
    assert hook["Event"]["Upload"]["ID"] == ""  # as in tusd: no id before creation
    assert hook["Event"]["Upload"]["Storage"] is None
    assert not receiver.of("post-create")


async def test_pre_create_changes_the_id_and_the_metadata(client: TestClient, receiver: TusdReceiver) -> None:
    resp = await create(client, 5, filename="a.wav", project="p1", secret_note="dropped by the hook")
    assert resp.status == 201, await resp.text()
    upload_id = id_of(resp.headers["Location"])
    assert upload_id.startswith("prefix-")
    head = await client.head(f"/files/{upload_id}", headers=TUS)
    kept = dict(pair.split(" ") for pair in head.headers["Upload-Metadata"].split(","))
    assert set(kept) == {"filename", "creation_time", "project"}
    assert base64.b64decode(kept["filename"]) == b"a.wav"

    request = receiver.of("pre-create")[0]["Event"]["HTTPRequest"]
    assert request["Method"] == "POST" and request["URI"] == "/files/"
    assert request["RemoteAddr"].startswith("127.0.0.1:")
    assert request["Header"]["Upload-Length"] == ["5"] and request["Header"]["X-Tenant"] == ["acme"]
    assert request["Header"]["Authorization"] == ["Bearer not-for-the-outbox"]  # pre-* hooks see it, as in tusd
    created = await receiver.wait_for("post-create", upload_id)
    assert created["Event"]["Upload"]["MetaData"]["project"] == "p1"
    assert "Authorization" not in created["Event"]["HTTPRequest"]["Header"]  # post-* events are stored: no credentials
    headers = receiver.request_headers[receiver.requests.index(created)]
    assert headers["X-Tenant"] == "acme"  # tusd's -hooks-http-forward-headers: set on the hook request
    assert headers["webhook-id"] and headers["webhook-signature"].startswith("v1,")


async def test_pre_finish_adds_a_header_and_post_finish_tells_where_the_file_is(
    client: TestClient, receiver: TusdReceiver
) -> None:
    upload_id = id_of((await create(client, 6, filename="b.txt")).headers["Location"])
    resp = await patch(client, f"/files/{upload_id}", 0, b"abcdef")
    assert resp.status == 204
    assert resp.headers["Link"] == f'<https://example.com/files/{upload_id}>; rel="related"'
    finished = await receiver.wait_for("post-finish", upload_id)
    upload = finished["Event"]["Upload"]
    assert upload["Size"] == 6 and upload["Offset"] == 6 and not upload["SizeIsDeferred"]
    assert upload["Storage"]["Type"] == "filestore"
    assert Path(upload["Storage"]["Path"]).read_bytes() == b"abcdef"
    assert os.path.exists(upload["Storage"]["InfoPath"])
    assert finished["Event"]["HTTPRequest"]["Method"] == "PATCH"


async def test_post_receive_stops_the_upload(client: TestClient, receiver: TusdReceiver) -> None:
    upload_id = id_of((await create(client, 10, filename="c.bin", project="closed")).headers["Location"])
    assert (await patch(client, f"/files/{upload_id}", 0, b"0123")).status == 204
    progress = await receiver.wait_for("post-receive", upload_id)
    assert progress["Event"]["Upload"]["Offset"] == 4
    terminated = await receiver.wait_for("post-terminate", upload_id)  # the stop deleted it, as tusd does
    assert terminated["Event"]["Upload"]["Offset"] == 4
    assert (await client.head(f"/files/{upload_id}", headers=TUS)).status == 404
    assert not receiver.of("pre-terminate", upload_id)  # tusd stops without asking pre-terminate


async def test_a_stop_answers_the_patch_it_cuts(client: TestClient, receiver: TusdReceiver) -> None:
    """The PATCH still sending when the stop arrives gets the hook's response, as in tusd."""
    receiver.hold_post_receive = asyncio.Event()
    upload_id = id_of((await create(client, 100, filename="g.bin", project="closed")).headers["Location"])
    assert (await patch(client, f"/files/{upload_id}", 0, b"0123")).status == 204  # its post-receive is held
    await receiver.wait_for("post-receive", upload_id)
    stalled = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"45678"
        stalled.set()
        await asyncio.sleep(60)  # a client on a stalled network; cut by the stop long before this
        yield b"9"

    second = asyncio.create_task(patch(client, f"/files/{upload_id}", 4, body()))  # type: ignore[arg-type]
    await asyncio.wait_for(stalled.wait(), 30)
    receiver.hold_post_receive.set()  # the receiver answers StopUpload now
    resp = await asyncio.wait_for(second, 30)
    assert resp.status == 400
    assert resp.headers["Content-Type"] == "application/json"
    assert await resp.json() == {"message": "associated project is no longer available"}
    await receiver.wait_for("post-terminate", upload_id)
    assert (await client.head(f"/files/{upload_id}", headers=TUS)).status == 404


async def test_pre_terminate_rejects_the_termination(client: TestClient, receiver: TusdReceiver) -> None:
    kept = id_of((await create(client, 3, filename="d.txt", keep="1")).headers["Location"])
    resp = await client.delete(f"/files/{kept}", headers=TUS)
    assert resp.status == 409
    assert await resp.text() == "this upload is kept for the audit\n"
    assert resp.headers["Content-Type"].startswith("text/plain")  # tusd's error default, the hook set none
    assert (await client.head(f"/files/{kept}", headers=TUS)).status == 200

    gone = id_of((await create(client, 3, filename="e.txt")).headers["Location"])
    assert (await client.delete(f"/files/{gone}", headers=TUS)).status == 204
    await receiver.wait_for("post-terminate", gone)


async def test_the_receivers_log_reads_like_tusds(client: TestClient, receiver: TusdReceiver) -> None:
    """Every hook type reached the receiver in tusd's shape (the log is what the report shows)."""
    await create(client, 1)
    upload_id = id_of((await create(client, 2, filename="f.txt")).headers["Location"])
    await patch(client, f"/files/{upload_id}", 0, b"xy")
    await receiver.wait_for("post-finish", upload_id)
    await client.delete(f"/files/{upload_id}", headers=TUS)
    await receiver.wait_for("post-terminate", upload_id)
    kinds = {r["Type"] for r in receiver.requests}
    assert kinds == set(TUSD_HOOKS)
    for hook in receiver.requests:
        assert set(hook) == {"Type", "Event"} and set(hook["Event"]) == {"Upload", "HTTPRequest"}
    print("\n".join(receiver.log))
    print(json.dumps(receiver.of("post-finish")[0], indent=1))
