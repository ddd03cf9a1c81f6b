"""Hooks through the real app: callables and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import base64
from pathlib import Path

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from conformance.live_server import free_port
from tests.client.tus import OCTET, TUS, id_of, path_of, upload, upload_files
from tests.client.wait import until
from tests.hooks.hook_support import TUSD_HOOKS
from tests.tokens import SECRET, bearer
from tusd_py.config.values import Config
from tusd_py.hooks import (
    HookChange,
    HookEvent,
    HookRegistry,
    HookRejection,
    HookType,
    PreCreateResult,
    verify_signature,
)
from tusd_py.model.upload import UploadInfo
from tusd_py.server.app import SERVICE_KEY, make_app


def config(tmp_path: Path, **kw: object) -> Config:
    return Config(storage_dir=str(tmp_path / "data"), jwt_secret=SECRET, **kw)  # type: ignore[arg-type]


async def test_pre_create_rejection_reaches_the_client(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = HookRegistry()

    async def only_audio(event: HookEvent) -> PreCreateResult | None:
        if not (event.upload.metadata.get("filetype") or "").startswith("audio/"):
            return PreCreateResult(rejection=HookRejection(415, "only audio recordings are accepted"))
        return None

    registry.register(HookType.PRE_CREATE, only_audio)
    client = await aiohttp_client(make_app(config(tmp_path), hooks=registry))
    resp = await client.post(
        "/files/",
        headers={**TUS, **bearer("alice"), "Upload-Length": "3", "Upload-Metadata": "filetype dGV4dC9wbGFpbg=="},
    )
    assert resp.status == 415 and await resp.text() == "only audio recordings are accepted\n"
    assert upload_files(tmp_path / "data") == []
    ok = await client.post(
        "/files/", headers={**TUS, **bearer("alice"), "Upload-Length": "3", "Upload-Metadata": "filetype YXVkaW8vbXA0"}
    )
    assert ok.status == 201


async def test_pre_create_may_change_id_and_metadata(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = HookRegistry()

    async def rename(event: HookEvent) -> PreCreateResult:
        return PreCreateResult(change=HookChange(upload_id=f"rec-{event.user_id}-1", metadata={"mode": b"recap"}))

    registry.register(HookType.PRE_CREATE, rename)
    client = await aiohttp_client(make_app(config(tmp_path), hooks=registry))
    resp = await client.post("/files/", headers={**TUS, **bearer("alice"), "Upload-Length": "3"})
    assert resp.headers["Location"].endswith("/files/rec-alice-1")
    head = await client.head("/files/rec-alice-1", headers={**TUS, **bearer("alice")})
    assert head.headers["Upload-Metadata"] == "mode cmVjYXA="


async def test_pre_finish_rejection_keeps_bytes_but_skips_processing(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = HookRegistry()
    finished: list[str] = []

    async def reject(event: HookEvent) -> HookRejection:
        return HookRejection(422, "recording is silent")

    async def on_finish(event: HookEvent) -> None:
        finished.append(event.upload.id)

    registry.register(HookType.PRE_FINISH, reject)
    registry.register(HookType.POST_FINISH, on_finish)
    client = await aiohttp_client(make_app(config(tmp_path), hooks=registry))
    resp = await client.post("/files/", headers={**TUS, **bearer("alice"), "Upload-Length": "3"})
    path = path_of(resp.headers["Location"])
    done = await client.patch(path, headers={**TUS, **bearer("alice"), **OCTET, "Upload-Offset": "0"}, data=b"abc")
    assert done.status == 422 and "silent" in await done.text()
    head = await client.head(path, headers={**TUS, **bearer("alice")})
    assert head.headers["Upload-Offset"] == "3"  # nothing lost
    await client.app[SERVICE_KEY].hooks.drain(5)  # type: ignore[index, union-attr]
    assert finished == []


async def test_webhook_receives_signed_events_with_user_and_request_ids(
    aiohttp_client, aiohttp_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    received: list[tuple[str, dict[str, object]]] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        verify_signature("hook-secret", request.headers["Tusd-Py-Signature"], body)  # the old header, kept
        # The Standard Webhooks library verifies the new headers; the id is the event's.
        parsed = Webhook("whsec_" + base64.b64encode(b"hook-secret").decode()).verify(body, dict(request.headers))
        assert request.headers["webhook-id"] == parsed["event_id"]
        received.append((request.headers["Tusd-Py-Hook"], parsed))
        return web.Response(status=200)

    target = web.Application()
    target.router.add_post("/hook", receive)
    server = await aiohttp_server(target)
    cfg = config(tmp_path, hooks_url=str(server.make_url("/hook")), hooks_secret="hook-secret")
    client = await aiohttp_client(make_app(cfg))
    path = await upload(client, b"hello", auth=bearer("alice"), **{"X-Request-ID": "req-123"})
    await client.delete(path, headers={**TUS, **bearer("alice")})
    await until(lambda: "post-terminate" in [kind for kind, _ in received], seconds=30)  # post-* come from the outbox
    kinds = [kind for kind, _ in received]
    for kind in TUSD_HOOKS:
        assert kind in kinds, kinds
    finish = next(event for kind, event in received if kind == "post-finish")
    assert finish["user_id"] == "alice"
    assert finish["upload"]["offset"] == 5  # type: ignore[index]
    assert finish["upload"]["sha256"] is None  # type: ignore[index]  # computed later, by processing
    create = next(event for kind, event in received if kind == "pre-create")
    assert create["request_id"] == "req-123"


async def test_webhook_down_never_loses_the_upload(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}/hook"
    cfg = config(
        tmp_path, hooks_url=dead, hooks_events=["post-create", "post-finish"], hooks_retries=1, hooks_timeout=0.5
    )
    client = await aiohttp_client(make_app(cfg))
    path = await upload(client, b"still here", auth=bearer("alice"))
    assert await (await client.get(path, headers=bearer("alice"))).read() == b"still here"


async def test_pre_create_webhook_down_fails_closed_with_503(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config(tmp_path, hooks_url=f"http://127.0.0.1:{free_port()}/hook", hooks_timeout=0.5)
    client = await aiohttp_client(make_app(cfg))
    resp = await client.post("/files/", headers={**TUS, **bearer("alice"), "Upload-Length": "1"})
    assert resp.status == 503 and (await resp.text()).strip()


async def test_post_hooks_for_partials_are_not_post_finish(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = HookRegistry()
    finished: list[UploadInfo | str] = []

    async def on_finish(event: HookEvent) -> None:
        finished.append(event.upload.id)

    registry.register(HookType.POST_FINISH, on_finish)
    client = await aiohttp_client(make_app(config(tmp_path), hooks=registry))
    part = await upload(client, b"abc", auth=bearer("alice"), **{"Upload-Concat": "partial"})
    resp = await client.post("/files/", headers={**TUS, **bearer("alice"), "Upload-Concat": f"final;{part}"})
    await client.app[SERVICE_KEY].hooks.drain(5)  # type: ignore[index, union-attr]
    assert finished == [id_of(resp.headers["Location"])]
