"""Durable post-* webhooks through the real app: a real receiver, the real SQLite state store."""

from __future__ import annotations

import asyncio
import base64
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance.live_server import free_port
from tests.client import tus
from tests.client.tus import OCTET, TUS, id_of, path_of
from tests.hooks.hook_support import StandardReceiver
from tests.tokens import SECRET, bearer
from tusd_py.config.values import Config
from tusd_py.hooks import HookEvent, HookRegistry, HookRejection, HookType
from tusd_py.server.app import make_app

HOOK_KEY = b"0123456789abcdef0123456789abcdef"
HOOK_SECRET = "whsec_" + base64.b64encode(HOOK_KEY).decode()


def config(tmp_path: Path, url: str, **kw: Any) -> Config:
    return Config(
        storage_dir=str(tmp_path / "data"),
        jwt_secret=SECRET,
        hooks_url=url,
        hooks_secret=HOOK_SECRET,
        hooks_timeout=2.0,
        hooks_backoff_max=2.0,
        **kw,
    )


async def upload(client: TestClient, data: bytes, **headers: str) -> str:
    """Alice's finished upload of ``data``, created with ``headers``; its id."""
    return id_of(await tus.upload(client, data, auth=bearer("alice"), **headers))


def outbox_rows(tmp_path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(tmp_path / "data" / "state.sqlite3") as db:
        return db.execute("SELECT event_id, hook, attempts FROM hook_outbox ORDER BY created_at").fetchall()


@pytest.mark.slow
async def test_a_receiver_down_for_12_seconds_gets_every_event_once_it_is_up(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    # Bound, not listening: connections are refused, and no other test's server (xdist runs two
    # workers) can take the port while the receiver is "down".
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    receiver = StandardReceiver(port, HOOK_SECRET)
    client = await aiohttp_client(make_app(config(tmp_path, receiver.url, hooks_events=["post-finish"])))
    ids = [await upload(client, f"recording {n}".encode()) for n in range(5)]
    await asyncio.sleep(12)
    rows = outbox_rows(tmp_path)
    assert len(rows) == 5 and all(attempts >= 2 for _, _, attempts in rows)  # retried while it was down
    metrics = await (await client.get("/metrics")).text()
    assert "tusd_py_webhook_outbox_events 5.0" in metrics
    holder.close()
    await receiver.start()
    try:
        finished = await receiver.wait_for("post-finish", 5, within=30)
    finally:
        await receiver.stop()
    assert sorted(d.event["upload"]["id"] for d in finished) == sorted(ids)
    # The id a receiver de-duplicates on is the one the event got when it happened.
    assert sorted(d.webhook_id for d in finished) == sorted(event_id for event_id, _, _ in rows)
    assert all(d.webhook_id == d.event["event_id"] for d in finished)
    # Delivered rows leave the outbox once the sender has read the 2xx, a moment after the receiver
    # saw the event (bounded: 10 s).
    for _ in range(100):
        if not outbox_rows(tmp_path):
            break
        await asyncio.sleep(0.1)
    assert outbox_rows(tmp_path) == []


async def test_every_post_event_is_written_with_its_change_and_carries_location_and_headers(
    aiohttp_client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    receiver = StandardReceiver(free_port(), HOOK_SECRET)
    await receiver.start()
    try:
        cfg = config(tmp_path, receiver.url, hooks_forward_headers=["X-Tenant"], progress_hooks_interval=0)
        client = await aiohttp_client(make_app(cfg))
        upload_id = await upload(client, b"RIFF....WAVE", **{"X-Tenant": "acme", "X-Other": "no"})
        process = (await receiver.wait_for("post-process", 1))[0].event
        resp = await client.delete(f"/files/{upload_id}", headers={**TUS, **bearer("alice")})
        assert resp.status == 204
        await receiver.wait_for("post-terminate", 1)
    finally:
        await receiver.stop()
    for hook in ("post-create", "post-receive", "post-finish", "post-process", "post-terminate"):
        event = receiver.of(hook)[0].event
        assert event["upload"]["id"] == upload_id
        storage = event["upload"]["storage"]
        assert storage["type"] == "filesystem"
        assert Path(storage["path"]).resolve() == (tmp_path / "data" / upload_id).resolve()
    created = receiver.of("post-create")[0].event
    assert created["headers"] == {"x-tenant": "acme"}  # the allow-list only
    # post-process tells the result without polling the Recordings API.
    assert process["process"]["status"] == "completed" and process["process"]["error"] is None
    assert set(process["process"]["results"]) == {"digest", "analysis"}
    assert process["upload"]["sha256"] == process["process"]["results"]["digest"]["sha256"]


async def test_post_process_reports_a_failed_job_with_its_error(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    receiver = StandardReceiver(free_port(), HOOK_SECRET)
    await receiver.start()
    try:
        cfg = config(tmp_path, receiver.url, hooks_events=["post-process"], job_attempts=1)
        app = make_app(cfg)
        client = await aiohttp_client(app)
        from tusd_py.server.app import PIPELINE_KEY

        async def broken(ctx: Any) -> dict[str, Any]:
            raise RuntimeError("analysis exploded")

        app[PIPELINE_KEY].steps.register("explode", broken)
        await upload(client, b"some bytes")
        event = (await receiver.wait_for("post-process", 1))[0].event
    finally:
        await receiver.stop()
    assert event["process"]["status"] == "failed"
    assert "analysis exploded" in event["process"]["error"]


async def test_pre_terminate_rejection_keeps_the_upload(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = HookRegistry()
    seen: list[HookEvent] = []

    async def keep_evidence(event: HookEvent) -> HookRejection | None:
        seen.append(event)
        return HookRejection(403, "recordings under legal hold cannot be deleted")

    registry.register(HookType.PRE_TERMINATE, keep_evidence)
    client = await aiohttp_client(
        make_app(Config(storage_dir=str(tmp_path / "data"), jwt_secret=SECRET), hooks=registry)
    )
    upload_id = await upload(client, b"keep me")
    resp = await client.delete(f"/files/{upload_id}", headers={**TUS, **bearer("alice")})
    assert resp.status == 403 and await resp.text() == "recordings under legal hold cannot be deleted\n"
    assert seen[0].upload.id == upload_id and seen[0].user_id == "alice"
    get = await client.get(f"/files/{upload_id}", headers=bearer("alice"))
    assert await get.read() == b"keep me"
    # The Recordings API's delete goes the same way.
    api = await client.delete(f"/api/recordings/{upload_id}", headers=bearer("alice"))
    assert api.status == 403
    assert (await client.head(f"/files/{upload_id}", headers={**TUS, **bearer("alice")})).status == 200


async def test_progress_events_follow_the_progress_hooks_interval(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    receiver = StandardReceiver(free_port(), HOOK_SECRET)
    await receiver.start()
    try:
        cfg = config(tmp_path, receiver.url, hooks_events=["post-receive", "post-finish"], progress_hooks_interval=3600)
        client = await aiohttp_client(make_app(cfg))
        resp = await client.post("/files/", headers={**TUS, **bearer("alice"), "Upload-Length": "4"})
        path = path_of(resp.headers["Location"])
        for offset in range(4):  # four PATCHes of one byte, well within the hour
            patch = await client.patch(
                path, headers={**TUS, **bearer("alice"), **OCTET, "Upload-Offset": str(offset)}, data=b"x"
            )
            assert patch.status == 204
        await receiver.wait_for("post-finish", 1)
        await receiver.wait_for("post-receive", 2)
        await asyncio.sleep(0.3)  # any extra event would have arrived by now
    finally:
        await receiver.stop()
    # The first progress and the final one (100 %), nothing in between.
    assert sorted(d.event["upload"]["offset"] for d in receiver.of("post-receive")) == [1, 4]


async def test_post_process_callables_hear_the_result(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = HookRegistry()
    heard: asyncio.Queue[HookEvent] = asyncio.Queue()

    async def on_processed(event: HookEvent) -> None:
        await heard.put(event)

    registry.register(HookType.POST_PROCESS, on_processed)
    client = await aiohttp_client(
        make_app(Config(storage_dir=str(tmp_path / "data"), jwt_secret=SECRET), hooks=registry)
    )
    upload_id = await upload(client, b"fLaC not really")
    event = await asyncio.wait_for(heard.get(), 30)
    assert event.upload.id == upload_id and event.process is not None
    assert event.process.status == "completed" and event.upload.sha256 == event.process.results["digest"]["sha256"]
