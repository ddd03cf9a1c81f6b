"""Steps run at least once (a claimant that died or lost its lease is replaced): running the built-in
steps again on the same upload must give the same results and leave the upload as the first run did."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from storage_backends.filesystem import FileStore
from tusd_py.model.upload import UploadInfo
from tusd_py.pipeline.models import Job, JobStatus, Recording
from tusd_py.pipeline.states import Status
from tusd_py.pipeline.steps import StepContext, default_registry


async def run_all(files: FileStore, upload_id: str, publish: Any) -> dict[str, Any]:
    """One attempt, as the worker makes it: a fresh context from the stored info, every step in order."""
    info = await files.get_info(upload_id)
    recording = Recording(id=upload_id, owner="alice", status=Status.PROCESSING, created_at=0, updated_at=0)
    job = Job(id="j", upload_id=upload_id, owner="alice", status=JobStatus.RUNNING, attempts=1,
              not_before=0, created_at=0, updated_at=0)  # fmt: skip
    ctx = StepContext(recording=recording, job=job, info=info, data_store=files)
    try:
        for name, step in default_registry(publish_digest=publish):
            ctx.results[name] = await step(ctx)
    finally:
        await ctx.aclose()
    return ctx.results


async def test_running_the_steps_twice_gives_the_same_result(tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    await files.start()
    wav = tmp_path / "memo.wav"
    with wave.open(str(wav), "wb") as out:  # one second of 16 kHz mono silence
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000)
    data = wav.read_bytes()
    info = UploadInfo(id="memo", length=len(data), owner="alice", metadata={})
    await files.create(info)

    async def body() -> AsyncIterator[bytes]:
        yield data

    info.offset = await files.write(info, body())
    await files.finish(info)
    published: list[str] = []

    async def publish(upload_id: str, sha256: str) -> None:  # as TusService.record_digest stores it
        published.append(sha256)
        stored = await files.get_info(upload_id)
        stored.sha256 = sha256
        await files.update_info(stored)

    try:
        first = await run_all(files, "memo", publish)
        after_first = await files.get_info("memo")
        second = await run_all(files, "memo", publish)  # the job's next claimant runs it all again
        assert second == first
        assert first["analysis"]["format"] == "wav"
        assert await files.get_info("memo") == after_first  # the upload is as the first run left it
        assert len(published) == 1  # a digest already stored is neither recomputed nor published again
    finally:
        await files.close()
