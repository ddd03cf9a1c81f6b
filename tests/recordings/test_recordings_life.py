"""The life of a recording through the real app: tus upload, processing, failure, sync, restart,
delete and cleanup, all observed through the Recordings API (auth off, as with `make run`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.client.tus import upload_files
from tests.recordings.conftest import ClientFactory, make_config, open_api, start_upload, tus_head, upload
from tusd_py.pipeline.steps import PermanentStepError, StepContext
from tusd_py.server.app import PIPELINE_KEY, make_app

ONE = "/api/recordings/{upload_id}"


async def test_upload_is_processed_and_shown_with_analysis(
    aiohttp_client: ClientFactory, tmp_path: Path, state_store: dict[str, str], wav: bytes
) -> None:
    client = await aiohttp_client(make_app(make_config(tmp_path, **state_store)))
    api = await open_api(client)
    upload_id = await upload(client, wav)

    rec = await api.wait_for(upload_id, "completed")

    assert rec["id"] == upload_id and rec["owner"] is None
    assert rec["mode"] == "recap" and rec["filename"] == "memo.wav"
    assert rec["length"] == rec["offset"] == len(wav)
    assert rec["progress"] == {"offset": len(wav), "length": len(wav), "finished": True}
    assert rec["sha256"] == hashlib.sha256(wav).hexdigest()
    assert rec["attempts"] == 1 and rec["last_error"] is None and rec["job_id"]
    assert rec["created_at"] <= rec["uploaded_at"] <= rec["completed_at"]
    analysis = rec["analysis"]
    assert analysis["format"] == "wav" and analysis["codec"] == "pcm"
    assert analysis["duration_seconds"] == pytest.approx(0.25)
    assert analysis["sample_rate"] == 8000 and analysis["channels"] == 1
    assert analysis["recommendation"]["action"] == "keep"  # far below the transcoding threshold
    assert rec["results"]["analysis"] == analysis
    assert rec["upload_url"].endswith(f"/files/{upload_id}")
    download = await client.get(f"/files/{upload_id}")
    assert download.status == 200 and await download.read() == wav

    page = await api.get("/api/recordings")
    assert [item["id"] for item in page["items"]] == [upload_id] and page["next_cursor"] is None
    assert page["items"][0]["status"] == "completed"
    assert await api.get("/api/queue") == {"jobs": []}
    # Never deleted after processing unless asked: sync, cleanup leave a completed recording alone.
    assert await api.post("/api/sync") == {"requeued": []}
    assert (await api.post("/api/cleanup", params={"older_than_days": "0"}))["deleted"] == []
    assert (await api.recording(upload_id))["status"] == "completed"


async def test_a_failing_step_is_retried_then_failed_and_sync_queues_it_again(
    aiohttp_client: ClientFactory, tmp_path: Path, state_store: dict[str, str], wav: bytes
) -> None:
    app = make_app(make_config(tmp_path, **state_store, job_attempts=3))
    outage = {"on": True}

    async def transcribe(ctx: StepContext) -> dict[str, Any]:
        if outage["on"]:
            raise RuntimeError("transcriber down")
        return {"words": 3}

    app[PIPELINE_KEY].steps.register("transcribe", transcribe)
    client = await aiohttp_client(app)
    api = await open_api(client)
    upload_id = await upload(client, wav)

    rec = await api.wait_for(upload_id, "failed")
    assert rec["attempts"] == 3
    assert rec["last_error"] == "RuntimeError: transcriber down"
    assert rec["analysis"] is None and rec["results"] == {}  # results are kept from a successful attempt only
    assert rec["completed_at"] is None and rec["job_id"]
    assert await api.get("/api/queue") == {"jobs": []}  # a dead job is not waiting for anything
    stats = await api.get("/api/stats")
    assert stats["by_status"]["failed"] == {"count": 1, "bytes": len(wav)}

    outage["on"] = False
    assert await api.post("/api/sync") == {"requeued": [upload_id]}
    rec = await api.wait_for(upload_id, "completed")
    assert rec["attempts"] == 4 and rec["last_error"] is None
    assert rec["results"]["transcribe"] == {"words": 3} and rec["analysis"]["format"] == "wav"
    assert await api.post("/api/sync") == {"requeued": []}


async def test_a_job_queued_before_a_restart_completes_after_it(
    aiohttp_client: ClientFactory, tmp_path: Path, state_store: dict[str, str], wav: bytes
) -> None:
    first = await aiohttp_client(make_app(make_config(tmp_path, **state_store, workers=0)))  # nothing processes
    api = await open_api(first)
    upload_id = await upload(first, wav)
    rec = await api.recording(upload_id)
    assert rec["status"] == "uploaded"
    (job,) = (await api.get("/api/queue"))["jobs"]
    assert job["upload_id"] == upload_id and job["status"] == "queued" and job["id"] == rec["job_id"]
    await first.close()

    second = await aiohttp_client(make_app(make_config(tmp_path, **state_store, workers=1)))
    api = await open_api(second)
    rec = await api.wait_for(upload_id, "completed")
    assert rec["analysis"]["format"] == "wav" and rec["job_id"] == job["id"]


async def test_delete_removes_the_bytes_and_the_recording(
    aiohttp_client: ClientFactory, tmp_path: Path, state_store: dict[str, str], wav: bytes
) -> None:
    client = await aiohttp_client(make_app(make_config(tmp_path, **state_store)))
    api = await open_api(client)
    done = await upload(client, wav)
    await api.wait_for(done, "completed")
    partial = await start_upload(client, 100, b"x" * 40)
    kept = await start_upload(client, 10)

    for upload_id in (done, partial):
        assert await api.delete(ONE, upload_id=upload_id, expect=204) is None
        assert await api.recording(upload_id, expect=404) == "recording not found\n"
        assert await tus_head(client, upload_id) == 404
        assert (await client.get(f"/files/{upload_id}")).status == 404
        assert await api.delete(ONE, upload_id=upload_id, expect=404) == "recording not found\n"

    assert [item["id"] for item in (await api.get("/api/recordings"))["items"]] == [kept]
    left = upload_files(tmp_path / "data")
    assert left and all(name.startswith(kept) for name in left)  # only the untouched upload's files
    assert await api.delete(ONE, upload_id="no.such.id", expect=404) == "recording not found\n"


async def test_cleanup_deletes_failed_recordings_only(
    aiohttp_client: ClientFactory, tmp_path: Path, state_store: dict[str, str], wav: bytes
) -> None:
    app = make_app(make_config(tmp_path, **state_store))

    async def reject_bad(ctx: StepContext) -> dict[str, Any]:
        if ctx.recording.filename == "bad.wav":
            raise PermanentStepError("not a voice memo")
        return {}

    app[PIPELINE_KEY].steps.register("screen", reject_bad)
    client = await aiohttp_client(app)
    api = await open_api(client)
    good = await upload(client, wav, filename="good.wav")
    bad = await upload(client, wav, filename="bad.wav")
    assert (await api.wait_for(bad, "failed"))["attempts"] == 1  # permanent: no retry
    await api.wait_for(good, "completed")
    unfinished = await start_upload(client, 100, b"x" * 10)

    # The default is the server's --cleanup-failed-days (7): a fresh failure stays.
    assert await api.post("/api/cleanup") == {"deleted": [], "older_than_days": 7.0}
    assert await api.post("/api/cleanup", params={"older_than_days": "0"}) == {"deleted": [bad], "older_than_days": 0}

    assert await api.recording(bad, expect=404) == "recording not found\n"
    assert await tus_head(client, bad) == 404
    assert (await api.recording(good))["status"] == "completed"
    assert await tus_head(client, good) == 200 and await tus_head(client, unfinished) == 200
    assert sorted(item["id"] for item in (await api.get("/api/recordings"))["items"]) == sorted([good, unfinished])

    for days in ("-1", "abc", "nan", "inf", "1e400", ""):
        reason = await api.post("/api/cleanup", params={"older_than_days": days}, expect=400)
        assert "older_than_days" in reason


async def test_cleanup_needs_a_number_when_the_server_never_cleans_up(
    aiohttp_client: ClientFactory, tmp_path: Path, state_store: dict[str, str]
) -> None:
    client = await aiohttp_client(make_app(make_config(tmp_path, **state_store, cleanup_failed_days=0)))
    api = await open_api(client)
    assert "required" in await api.post("/api/cleanup", expect=400)
    assert await api.post("/api/cleanup", params={"older_than_days": "30"}) == {"deleted": [], "older_than_days": 30}
