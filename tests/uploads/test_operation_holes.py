"""The holes the outside probe found in issue 25, each reproduced as it was reported, now closed.

Each test states the reproduction; before the operation layer each of them failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.client.tus import OCTET, TUS, id_of, path_of
from tests.tokens import SECRET, bearer
from tusd_py.config.values import Config
from tusd_py.hooks import HookEvent, HookRegistry, HookRejection, HookType
from tusd_py.server.app import PIPELINE_KEY, SERVICE_KEY, UPLOADS_KEY, make_app
from tusd_py.uploads.actor import SERVER
from tusd_py.uploads.cleanup import cleanup_failed

MIB = 1024 * 1024
ALICE, BOB = bearer("alice", ttl=24 * 3600), bearer("bob", ttl=24 * 3600)  # made at import: outlive any suite run


def auth_config(tmp_path: Path, **overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "storage_dir": str(tmp_path / "data"),
        "jwt_secret": SECRET,
        "workers": 0,
        "sweep_interval": 0,
        "cleanup_interval": 0,
        "lock_timeout": 1.0,
        **overrides,
    }
    return Config(**settings)


def upload_bytes_on_disk(tmp_path: Path) -> int:
    data = tmp_path / "data"
    return sum(p.stat().st_size for p in data.iterdir() if p.suffix == "" and p.is_file())


async def test_finals_of_a_deferred_partial_cannot_multiply_the_quota(aiohttp_client: Any, tmp_path: Path) -> None:
    """Repro 1: a deferred partial, 20 finals of it, then 6 MiB into the partial: 16x the 8 MiB quota."""
    client: TestClient = await aiohttp_client(make_app(auth_config(tmp_path, quota_bytes=8 * MIB)))
    me = {**TUS, **ALICE}
    made = await client.post("/files/", headers={**me, "Upload-Concat": "partial", "Upload-Defer-Length": "1"})
    assert made.status == 201
    partial = path_of(made.headers["Location"])
    finals = []
    for _ in range(20):
        final = await client.post("/files/", headers={**me, "Upload-Concat": f"final;{partial}"})
        assert final.status == 201
        finals.append(path_of(final.headers["Location"]))
    body = b"z" * (6 * MIB)
    resp = await client.patch(
        partial, headers={**me, **OCTET, "Upload-Offset": "0", "Upload-Length": str(len(body))}, data=body
    )
    assert resp.status == 204  # the partial itself fits
    stats = await (await client.get("/api/stats", headers=ALICE)).json()
    assert stats["quota"]["bytes_used"] <= 8 * MIB
    assert upload_bytes_on_disk(tmp_path) <= 8 * MIB
    # A final that cannot be assembled says why, on HEAD as on any request.
    head = await client.head(finals[0], headers=me)
    assert head.status == 413


async def test_a_final_of_known_partials_reserves_its_length_at_creation(aiohttp_client: Any, tmp_path: Path) -> None:
    client: TestClient = await aiohttp_client(make_app(auth_config(tmp_path, quota_bytes=1000)))
    me = {**TUS, **ALICE}
    made = await client.post(
        "/files/", headers={**me, **OCTET, "Upload-Concat": "partial", "Upload-Length": "400"}, data=b"p" * 400
    )
    partial = path_of(made.headers["Location"])
    assert (await client.post("/files/", headers={**me, "Upload-Concat": f"final;{partial}"})).status == 201
    refused = await client.post("/files/", headers={**me, "Upload-Concat": f"final;{partial}"})
    assert refused.status == 413 and "quota exceeded" in await refused.text()


async def test_a_stranger_cannot_cut_the_owners_patch(aiohttp_client: Any, tmp_path: Path) -> None:
    """Repro 2: the owner streams a PATCH that pauses; another user's HEAD and PATCH must not take its lock."""
    client: TestClient = await aiohttp_client(make_app(auth_config(tmp_path)))
    made = await client.post("/files/", headers={**TUS, **ALICE, "Upload-Length": str(2 * MIB)})
    path = path_of(made.headers["Location"])
    paused, resume = asyncio.Event(), asyncio.Event()

    async def phone_on_a_bad_network() -> AsyncIterator[bytes]:
        yield b"a" * (512 * 1024)
        paused.set()
        await resume.wait()
        for _ in range(3):
            yield b"b" * (512 * 1024)

    owner = asyncio.ensure_future(
        client.patch(
            path,
            headers={**TUS, **ALICE, **OCTET, "Upload-Offset": "0", "Content-Length": str(2 * MIB)},
            data=phone_on_a_bad_network(),
        )
    )
    await asyncio.wait_for(paused.wait(), 10)
    for _ in range(3):
        assert (await client.head(path, headers={**TUS, **BOB})).status == 404
        stranger = await client.patch(path, headers={**TUS, **BOB, **OCTET, "Upload-Offset": "0"}, data=b"evil")
        assert stranger.status == 404
    resume.set()
    resp = await asyncio.wait_for(owner, 30)
    assert resp.status == 204 and resp.headers["Upload-Offset"] == str(2 * MIB)


async def test_every_client_delete_asks_the_pre_terminate_hook(aiohttp_client: Any, tmp_path: Path) -> None:
    """Repro 3: the Recordings API's delete and cleanup deleted without asking pre-terminate hooks."""
    registry = HookRegistry()
    asked: list[str] = []

    async def legal_hold(event: HookEvent) -> HookRejection | None:
        asked.append(event.upload.id)
        return HookRejection(403, "under legal hold")

    registry.register(HookType.PRE_TERMINATE, legal_hold)
    app = make_app(auth_config(tmp_path), hooks=registry)
    client: TestClient = await aiohttp_client(app)
    made = await client.post("/files/", headers={**TUS, **ALICE, **OCTET, "Upload-Length": "4"}, data=b"keep")
    upload_id = id_of(made.headers["Location"])
    assert (await client.delete(f"/api/recordings/{upload_id}", headers=ALICE)).status == 403
    assert asked == [upload_id]
    await _fail_recording(app, upload_id)
    cleanup = await client.post("/api/cleanup?older_than_days=0", headers=ALICE)
    assert cleanup.status == 403 and asked == [upload_id, upload_id]
    assert (await client.get(f"/files/{upload_id}", headers=ALICE)).status == 200


async def test_a_final_sent_with_a_body_is_refused_not_dropped(aiohttp_client: Any, tmp_path: Path) -> None:
    """Repro 4: a final concatenation with a body was answered 201 and the body was dropped."""
    client: TestClient = await aiohttp_client(make_app(auth_config(tmp_path)))
    me = {**TUS, **ALICE}
    made = await client.post(
        "/files/", headers={**me, **OCTET, "Upload-Concat": "partial", "Upload-Length": "3"}, data=b"abc"
    )
    partial = path_of(made.headers["Location"])
    before = sorted(p.name for p in (tmp_path / "data").iterdir())
    resp = await client.post("/files/", headers={**me, **OCTET, "Upload-Concat": f"final;{partial}"}, data=b"lost?")
    assert resp.status == 400 and "takes no body" in await resp.text()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == before


async def test_a_finish_stored_but_not_recorded_is_recorded_at_start(aiohttp_client: Any, tmp_path: Path) -> None:
    """Repro 5: killed after storage recorded the finish and before the pipeline did: never processed.

    The crash is reproduced exactly: the last bytes and the finish go to storage the way the dead
    process wrote them, and the pipeline never hears of it; then the server starts again."""
    config = Config(storage_dir=str(tmp_path / "data"), workers=0, sweep_interval=0, cleanup_interval=0)
    first: TestClient = await aiohttp_client(make_app(config))
    made = await first.post("/files/", headers={**TUS, "Upload-Length": "10"})
    path = path_of(made.headers["Location"])
    upload_id = id_of(path)
    resp = await first.patch(path, headers={**TUS, **OCTET, "Upload-Offset": "0"}, data=b"01234")
    assert resp.status == 204
    store = first.app[SERVICE_KEY].store  # type: ignore[index]
    info = await store.get_info(upload_id)

    async def rest() -> AsyncIterator[bytes]:
        yield b"56789"

    info.offset = await store.write(info, rest())
    info.finished_at = 1.0
    await store.finish(info)  # the storage commit; the pipeline's "uploaded" never happened
    recording = await (await first.get(f"/api/recordings/{upload_id}")).json()
    assert recording["status"] == "uploading"
    await first.close()

    second: TestClient = await aiohttp_client(make_app(Config(**{**_fields(config), "workers": 1})))
    status = ""
    for _ in range(200):
        status = (await (await second.get(f"/api/recordings/{upload_id}")).json())["status"]
        if status == "completed":
            break
        await asyncio.sleep(0.05)
    assert status == "completed"


async def test_cleanup_skips_a_busy_upload_and_finds_it_next_round(aiohttp_client: Any, tmp_path: Path) -> None:
    """Repro 6a: cleanup forgot the recording before deleting the bytes; a busy upload's bytes stayed forever."""
    app = make_app(auth_config(tmp_path))
    client: TestClient = await aiohttp_client(app)
    made = await client.post("/files/", headers={**TUS, **ALICE, **OCTET, "Upload-Length": "4"}, data=b"gone")
    upload_id = id_of(made.headers["Location"])
    await _fail_recording(app, upload_id)
    uploads, pipeline = app[UPLOADS_KEY], app[PIPELINE_KEY]
    async with app[SERVICE_KEY].locker.lock(upload_id):  # a client is writing it right now
        assert await cleanup_failed(uploads, SERVER, pipeline, 0) == []
    assert await pipeline.failed_before(0) == [upload_id]  # still there for the next round
    assert await cleanup_failed(uploads, SERVER, pipeline, 0) == [upload_id]
    assert (await client.head(f"/files/{upload_id}", headers={**TUS, **ALICE})).status == 404
    assert await pipeline.failed_before(0) == []


async def test_empty_uploads_are_rated_per_user(aiohttp_client: Any, tmp_path: Path) -> None:
    """Repro 6b: a loop of empty creations made unlimited files, rows, jobs and events."""
    client: TestClient = await aiohttp_client(make_app(auth_config(tmp_path, quota_creations_per_minute=5)))
    statuses = [(await client.post("/files/", headers={**TUS, **ALICE, "Upload-Length": "0"})).status for _ in range(6)]
    assert statuses == [201] * 5 + [429]
    refused = await client.post("/files/", headers={**TUS, **ALICE, "Upload-Length": "0"})
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert (await client.post("/files/", headers={**TUS, **BOB, "Upload-Length": "0"})).status == 201


async def _fail_recording(app: Any, upload_id: str) -> None:
    """Make the recording ``failed`` the way the worker does when its attempts are used up."""
    store = app[PIPELINE_KEY].store
    for _ in range(100):
        claim = await store.claim_job()
        if claim is not None:
            break
        await asyncio.sleep(0.02)
    assert claim is not None and claim.job.upload_id == upload_id
    await store.fail_attempt(claim.job.id, claim.job.claim_token, "injected failure", None)


def _fields(config: Config) -> dict[str, Any]:
    import msgspec

    return msgspec.structs.asdict(config)
