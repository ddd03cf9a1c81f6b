"""With auth on: each user sees only their own recordings, another's answers 404 like a missing
one, every action is scoped to the caller, and stats carry the caller's quota."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.recordings.conftest import (
    Api,
    Client,
    ClientFactory,
    make_config,
    open_api,
    start_upload,
    tus_head,
    upload,
)
from tests.tokens import SECRET
from tusd_py.config.values import Config
from tusd_py.pipeline.steps import PermanentStepError, StepContext
from tusd_py.server.app import PIPELINE_KEY, make_app

ONE = "/api/recordings/{upload_id}"
QUOTA_BYTES = 1_000_000


def auth_config(tmp_path: Path, **overrides: Any) -> Config:
    return make_config(tmp_path, jwt_secret=SECRET, quota_bytes=QUOTA_BYTES, quota_unfinished=5, **overrides)


async def test_another_users_recordings_are_invisible(
    aiohttp_client: ClientFactory, tmp_path: Path, wav: bytes
) -> None:
    client = await aiohttp_client(make_app(auth_config(tmp_path, workers=0)))
    alice = await open_api(client, "alice")
    bob = alice.as_user("bob")
    finished = await upload(client, wav, user="alice")
    partial = await start_upload(client, 100, b"z" * 10, user="alice")

    assert {item["id"] for item in (await alice.get("/api/recordings"))["items"]} == {finished, partial}
    assert (await alice.recording(finished))["owner"] == "alice"
    assert await bob.get("/api/recordings") == {"items": [], "next_cursor": None}
    missing = await bob.recording("never-created", expect=404)
    for upload_id in (finished, partial):
        assert await bob.recording(upload_id, expect=404) == missing  # same answer: no existence leak
        assert await bob.delete(ONE, upload_id=upload_id, expect=404) == missing
        assert await tus_head(client, upload_id, "alice") == 200  # still there
    assert await bob.get("/api/queue") == {"jobs": []}
    assert len((await alice.get("/api/queue"))["jobs"]) == 1
    assert await bob.post("/api/sync") == {"requeued": []}
    bob_stats = await bob.get("/api/stats")
    assert bob_stats["total_count"] == 0 and bob_stats["quota"]["bytes_used"] == 0

    assert await alice.delete(ONE, upload_id=finished, expect=204) is None
    assert await tus_head(client, finished, "alice") == 404


async def test_every_operation_but_the_document_needs_a_token(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    client = await aiohttp_client(make_app(auth_config(tmp_path, workers=0)))
    anonymous = Api(client, (await open_api(client, "alice")).document)
    calls = [
        ("GET", "/api/recordings", None),
        ("GET", ONE, "abc"),
        ("DELETE", ONE, "abc"),
        ("GET", "/api/queue", None),
        ("POST", "/api/sync", None),
        ("GET", "/api/stats", None),
        ("POST", "/api/cleanup", None),
    ]
    for method, template, upload_id in calls:
        await anonymous.call(method, template, expect=401, upload_id=upload_id)
        await anonymous.call(
            method, template, expect=401, headers={"Authorization": "Bearer not.a.jwt"}, upload_id=upload_id
        )


async def test_the_document_needs_no_token(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    client = await aiohttp_client(make_app(auth_config(tmp_path, workers=0)))
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200 and (await resp.json())["openapi"] == "3.1.0"


async def test_stats_carry_the_callers_quota(aiohttp_client: ClientFactory, tmp_path: Path, wav: bytes) -> None:
    client = await aiohttp_client(make_app(auth_config(tmp_path, workers=0)))
    alice = await open_api(client, "alice")
    await upload(client, wav, user="alice")
    partial = await start_upload(client, 300, b"q" * 120, user="alice")
    await start_upload(client, 64, user="bob")
    await alice.wait_for(partial, "uploading", within=5)

    stats = await alice.get("/api/stats")
    assert stats["by_status"]["uploaded"] == {"count": 1, "bytes": len(wav)}
    assert stats["by_status"]["uploading"] == {"count": 1, "bytes": 120}
    assert stats["total_count"] == 2 and stats["total_bytes"] == len(wav) + 120
    used = len(wav) + 300  # a finished upload by its size, an unfinished one by its declared length
    assert stats["quota"] == {
        "bytes_used": used,
        "bytes_limit": QUOTA_BYTES,
        "bytes_left": QUOTA_BYTES - used,
        "unfinished_used": 1,
        "unfinished_limit": 5,
        "unfinished_left": 4,
    }
    bob = (await alice.as_user("bob").get("/api/stats"))["quota"]
    assert bob["bytes_used"] == 64 and bob["unfinished_used"] == 1

    await alice.delete(ONE, upload_id=partial, expect=204)  # deleting frees the quota, as tus DELETE does
    quota = (await alice.get("/api/stats"))["quota"]
    assert quota["bytes_used"] == len(wav) and quota["unfinished_used"] == 0


async def test_sync_and_cleanup_touch_only_the_callers_failures(
    aiohttp_client: ClientFactory, tmp_path: Path, wav: bytes
) -> None:
    app = make_app(auth_config(tmp_path))

    async def refuse(ctx: StepContext) -> dict[str, Any]:
        raise PermanentStepError("refused")

    app[PIPELINE_KEY].steps.register("refuse", refuse)
    client: Client = await aiohttp_client(app)
    alice = await open_api(client, "alice")
    bob = alice.as_user("bob")
    mine = await upload(client, wav, user="alice")
    theirs = await upload(client, wav, user="bob")
    await alice.wait_for(mine, "failed")
    await bob.wait_for(theirs, "failed")

    assert await alice.post("/api/sync") == {"requeued": [mine]}
    assert (await alice.wait_for(mine, "failed"))["attempts"] == 2  # ran again, and the step still refuses
    assert (await bob.recording(theirs))["attempts"] == 1

    assert (await alice.post("/api/cleanup", params={"older_than_days": "0"}))["deleted"] == [mine]
    assert await tus_head(client, mine, "alice") == 404
    assert (await bob.recording(theirs))["status"] == "failed"
    assert await tus_head(client, theirs, "bob") == 200
