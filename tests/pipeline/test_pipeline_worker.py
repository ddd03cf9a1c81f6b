"""The worker pool and the Pipeline facade over a real filesystem backend and a real SQLite file."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from storage_backends.base import DataStore
from storage_backends.filesystem import FileStore
from tusd_py.model.fencing import Fence
from tusd_py.model.upload import UploadInfo
from tusd_py.pipeline import Pipeline, PipelineConfig, PipelineListener, RecordingNotFound, Status
from tusd_py.pipeline.steps import PermanentStepError, StepContext, StepRegistry, default_registry
from tusd_py.pipeline.worker import RetryPolicy
from tusd_py.pipeline.worker import describe as describe_error

pytestmark = pytest.mark.timeout(30)


class RemoteLike(DataStore):
    """Delegates to a FileStore but, like S3, cannot name a local file: analysis must spool."""

    def __init__(self, inner: FileStore) -> None:
        self.inner = inner

    async def create(self, info: UploadInfo) -> None:
        await self.inner.create(info)

    async def get_info(self, upload_id: str) -> UploadInfo:
        return await self.inner.get_info(upload_id)

    async def update_info(self, info: UploadInfo, fence: Fence | None = None) -> None:
        await self.inner.update_info(info, fence)

    async def write(
        self, info: UploadInfo, chunks: AsyncIterable[bytes], verify: Callable[[], None] | None = None
    ) -> int:
        return await self.inner.write(info, chunks, verify)

    async def finish(self, info: UploadInfo, fence: Fence | None = None) -> None:
        await self.inner.finish(info, fence)

    async def read(self, info: UploadInfo, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self.inner.read(info, start, end):
            yield chunk

    async def terminate(self, upload_id: str, fence: Fence | None = None) -> None:
        await self.inner.terminate(upload_id, fence)

    async def list_uploads(self) -> AsyncIterator[UploadInfo]:
        async for info in self.inner.list_uploads():
            yield info


@pytest.fixture
async def files(tmp_path: Path) -> FileStore:
    store = FileStore(tmp_path / "uploads")
    await store.start()
    return store


def config(tmp_path: Path, **overrides: Any) -> PipelineConfig:
    settings: dict[str, Any] = {
        "db_path": str(tmp_path / "pipeline.sqlite3"),
        "concurrency": 2,
        "retry": RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=1.0),
        "poll_interval": 0.05,
        "job_timeout": 5.0,
        "stop_timeout": 5.0,
    }
    settings.update(overrides)
    return PipelineConfig(**settings)


async def upload(
    pipeline: Pipeline, data_store: DataStore, upload_id: str, data: bytes, owner: str = "alice"
) -> UploadInfo:
    """Drive an upload through the backend and the lifecycle listener, as the server does."""
    listener = PipelineListener(pipeline, progress_interval=0)
    info = UploadInfo(id=upload_id, length=len(data), owner=owner, metadata={"mode": b"recap", "filename": b"m.wav"})
    await data_store.create(info)
    await listener.on_created(info)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    info.offset = await data_store.write(info, chunks())
    listener.on_progress(info)
    await listener.drain()
    info.finished_at = time.time()
    await data_store.finish(info)
    await listener.on_finished(info)
    return info


async def wait_for(pipeline: Pipeline, upload_id: str, *statuses: Status, within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        rec = await pipeline.store.get_recording(upload_id)
        if rec.status in statuses:
            return rec
        assert time.monotonic() < deadline, f"{upload_id} still {rec.status}"
        await asyncio.sleep(0.02)


def recorder(published: list[tuple[str, str]]) -> Callable[[str, str], Any]:
    """A digest publisher that notes what it was given."""

    async def publish(upload_id: str, sha256: str) -> None:
        published.append((upload_id, sha256))

    return publish


def registry(**steps: Callable[[StepContext], Any]) -> StepRegistry:
    reg = StepRegistry()
    for name, step in steps.items():
        reg.register(name, step)
    return reg


async def test_analysis_step_completes_a_recording(
    tmp_path: Path, state_store: dict[str, Any], files: FileStore, audio_dir: Path
) -> None:
    published: list[tuple[str, str]] = []
    pipeline = Pipeline(config(tmp_path, **state_store), files, publish_digest=recorder(published))
    await pipeline.start()
    try:
        data = (audio_dir / "stdlib.wav").read_bytes()
        await upload(pipeline, files, "memo", data)
        rec = await wait_for(pipeline, "memo", Status.COMPLETED)
        # the digest step ran first, read the stored bytes back and published what it found
        assert rec.results["digest"] == {"sha256": hashlib.sha256(data).hexdigest()}
        assert published == [("memo", hashlib.sha256(data).hexdigest())]
        assert rec.mode == "recap" and rec.filename == "m.wav" and rec.owner == "alice"
        analysis = rec.results["analysis"]
        assert analysis["format"] == "wav" and analysis["duration_seconds"] == pytest.approx(2.0)
        assert rec.attempts == 1 and rec.last_error is None and rec.job_id
        assert await pipeline.list_queue() == []
    finally:
        await pipeline.stop()


async def test_analysis_spools_from_a_backend_without_local_files(
    tmp_path: Path, state_store: dict[str, Any], files: FileStore, audio_dir: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    remote = RemoteLike(files)
    pipeline = Pipeline(config(tmp_path, **state_store, spool_dir=str(spool)), remote)
    await pipeline.start()
    try:
        data = (audio_dir / "voice.flac").read_bytes()
        await upload(pipeline, remote, "memo", data)
        rec = await wait_for(pipeline, "memo", Status.COMPLETED)
        assert rec.results["analysis"]["format"] == "flac"
        assert rec.results["digest"]["sha256"] == hashlib.sha256(data).hexdigest()  # from the spooled copy
        assert list(spool.iterdir()) == []  # the temporary copy is gone
    finally:
        await pipeline.stop()


async def test_failing_step_is_retried_with_backoff_then_failed(
    tmp_path: Path, state_store: dict[str, Any], files: FileStore
) -> None:
    calls: list[float] = []

    async def transcribe(ctx: StepContext) -> dict[str, Any]:
        calls.append(time.monotonic())
        raise RuntimeError("transcriber down")

    pipeline = Pipeline(config(tmp_path, **state_store), files, steps=registry(transcribe=transcribe))
    await pipeline.start()
    try:
        await upload(pipeline, files, "memo", b"x" * 100)
        rec = await wait_for(pipeline, "memo", Status.FAILED)
        assert rec.attempts == 3 and rec.last_error == "RuntimeError: transcriber down"
        assert len(calls) == 3
        gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # exponential: base, then twice base
        await asyncio.sleep(0.2)
        assert len(calls) == 3  # and nothing after giving up
    finally:
        await pipeline.stop()


async def test_flaky_step_succeeds_on_a_later_attempt(
    tmp_path: Path, state_store: dict[str, Any], files: FileStore
) -> None:
    calls = 0

    async def flaky(ctx: StepContext) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("try again")
        return {"calls": calls, "earlier": dict(ctx.results)}

    async def first(ctx: StepContext) -> dict[str, Any]:
        return {"size": ctx.info.offset}

    pipeline = Pipeline(config(tmp_path, **state_store), files, steps=registry(first=first, flaky=flaky))
    await pipeline.start()
    try:
        await upload(pipeline, files, "memo", b"x" * 100)
        rec = await wait_for(pipeline, "memo", Status.COMPLETED)
        assert rec.attempts == 3 and rec.last_error is None
        assert rec.results == {"first": {"size": 100}, "flaky": {"calls": 3, "earlier": {"first": {"size": 100}}}}
    finally:
        await pipeline.stop()


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (PermanentStepError("not audio"), "PermanentStepError: not audio"),
        ({"not": object()}, "TypeError"),  # not JSON: retrying would not help
        (["not", "a", "dict"], "TypeError: step 'bad' returned list, not dict"),
    ],
)
async def test_permanent_failures_are_not_retried(
    tmp_path: Path, state_store: dict[str, Any], files: FileStore, outcome: Any, error: str
) -> None:
    calls = 0

    async def bad(ctx: StepContext) -> Any:
        nonlocal calls
        calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    pipeline = Pipeline(config(tmp_path, **state_store), files, steps=registry(bad=bad))
    await pipeline.start()
    try:
        await upload(pipeline, files, "memo", b"x" * 10)
        rec = await wait_for(pipeline, "memo", Status.FAILED)
        assert calls == 1 and rec.attempts == 1 and rec.last_error.startswith(error)
    finally:
        await pipeline.stop()


async def test_hung_step_times_out(tmp_path: Path, state_store: dict[str, Any], files: FileStore) -> None:
    async def hang(ctx: StepContext) -> dict[str, Any]:
        await asyncio.sleep(60)
        return {}

    cfg = config(tmp_path, **state_store, job_timeout=0.1, retry=RetryPolicy(max_attempts=1))
    pipeline = Pipeline(cfg, files, steps=registry(hang=hang))
    await pipeline.start()
    try:
        await upload(pipeline, files, "memo", b"x")
        rec = await wait_for(pipeline, "memo", Status.FAILED)
        assert rec.last_error == "timed out after 0.1s"
    finally:
        await pipeline.stop()


async def test_job_cut_by_shutdown_runs_again_exactly_once_after_restart(
    tmp_path: Path, state_store: dict[str, Any], files: FileStore
) -> None:
    started = asyncio.Event()

    async def stuck(ctx: StepContext) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()  # never finishes: the process "dies" under it
        return {}

    first = Pipeline(config(tmp_path, **state_store, stop_timeout=0.05), files, steps=registry(work=stuck))
    await first.start()
    await upload(first, files, "memo", b"x" * 10)
    await asyncio.wait_for(started.wait(), 5)
    await first.stop()

    runs: list[str] = []

    async def counting(ctx: StepContext) -> dict[str, Any]:
        runs.append(ctx.recording.id)
        return {}

    second = Pipeline(config(tmp_path, **state_store, concurrency=3), files, steps=registry(work=counting))
    await second.start()
    try:
        rec = await wait_for(second, "memo", Status.COMPLETED)
        for n in range(5):
            await upload(second, files, f"more{n}", b"y")
        for n in range(5):
            await wait_for(second, f"more{n}", Status.COMPLETED)
        await asyncio.sleep(0.1)
        assert sorted(runs) == sorted(["memo", *(f"more{n}" for n in range(5))])  # each exactly once
        assert rec.attempts == 2
    finally:
        await second.stop()


async def test_stop_lets_running_jobs_finish(tmp_path: Path, state_store: dict[str, Any], files: FileStore) -> None:
    started = asyncio.Event()

    async def slow(ctx: StepContext) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(0.2)
        return {"slow": True}

    pipeline = Pipeline(config(tmp_path, **state_store), files, steps=registry(slow=slow))
    await pipeline.start()
    await upload(pipeline, files, "memo", b"x")
    await asyncio.wait_for(started.wait(), 5)
    await pipeline.workers.stop(grace=5)
    rec = await pipeline.store.get_recording("memo")
    assert rec.status is Status.COMPLETED and rec.results == {"slow": {"slow": True}}
    await pipeline.stop()


async def test_sync_reprocesses_failed_recordings(
    tmp_path: Path, state_store: dict[str, Any], files: FileStore
) -> None:
    healthy = False

    async def remote(ctx: StepContext) -> dict[str, Any]:
        if not healthy:
            raise RuntimeError("down")
        return {"ok": True}

    cfg = config(tmp_path, **state_store, retry=RetryPolicy(max_attempts=1))
    pipeline = Pipeline(cfg, files, steps=registry(remote=remote))
    await pipeline.start()
    try:
        await upload(pipeline, files, "memo", b"x")
        await wait_for(pipeline, "memo", Status.FAILED)
        assert await pipeline.sync("bob") == []  # not bob's
        healthy = True
        assert await pipeline.sync("alice") == ["memo"]
        rec = await wait_for(pipeline, "memo", Status.COMPLETED)
        assert rec.attempts == 2 and rec.results == {"remote": {"ok": True}}
        stats = await pipeline.storage_stats("alice")
        assert stats.by_status[Status.COMPLETED].count == 1 and stats.total_bytes == 1
    finally:
        await pipeline.stop()


async def test_termination_during_processing(tmp_path: Path, state_store: dict[str, Any], files: FileStore) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def wait_step(ctx: StepContext) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {}

    pipeline = Pipeline(config(tmp_path, **state_store), files, steps=registry(wait=wait_step))
    await pipeline.start()
    try:
        info = await upload(pipeline, files, "memo", b"x")
        await asyncio.wait_for(started.wait(), 5)
        await files.terminate(info.id)
        await PipelineListener(pipeline).on_terminated(info)
        release.set()
        await asyncio.sleep(0.1)
        with pytest.raises(RecordingNotFound):
            await pipeline.get_recording("memo", "alice")
        assert await pipeline.record_terminated("memo") is False
        assert pipeline.workers.running  # the worker survived the vanished recording
    finally:
        await pipeline.stop()


async def test_failed_before_through_the_facade(tmp_path: Path, state_store: dict[str, Any], files: FileStore) -> None:
    now = [time.time()]
    pipeline = Pipeline(config(tmp_path, **state_store), files, steps=StepRegistry(), clock=lambda: now[0])
    await pipeline.start(workers=False)
    try:
        await pipeline.record_created(UploadInfo(id="old", length=1, owner="alice"))
        await pipeline.record_uploaded("old")
        claim = await pipeline.store.claim_job()
        assert claim is not None
        await pipeline.store.fail_attempt(claim.job.id, claim.job.claim_token, "x", None)
        now[0] += 3 * 86400
        assert await pipeline.failed_before(7) == []
        assert await pipeline.failed_before(2, owner="alice") == ["old"]
        assert await pipeline.failed_before(2, owner="bob") == []
        with pytest.raises(ValueError):
            await pipeline.failed_before(-1)
    finally:
        await pipeline.stop()


async def test_known_digest_is_neither_recomputed_nor_published(
    tmp_path: Path, state_store: dict[str, Any], files: FileStore
) -> None:
    published: list[tuple[str, str]] = []
    pipeline = Pipeline(config(tmp_path, **state_store), files, publish_digest=recorder(published))
    await pipeline.start()
    try:
        info = UploadInfo(id="known", length=3, owner="alice", sha256="ab" * 32)
        await files.create(info)
        await upload(pipeline, files, "fresh", b"xyz")
        rec = await wait_for(pipeline, "fresh", Status.COMPLETED)
        assert rec.results["digest"]["sha256"] == hashlib.sha256(b"xyz").hexdigest()
        listener = PipelineListener(pipeline)
        await listener.on_created(info)

        async def one() -> AsyncIterator[bytes]:
            yield b"abc"

        info.offset = await files.write(info, one())
        info.finished_at = time.time()
        await files.finish(info)
        await listener.on_finished(info)
        rec = await wait_for(pipeline, "known", Status.COMPLETED)
        assert rec.results["digest"] == {"sha256": "ab" * 32}  # what the info already held
        assert [upload_id for upload_id, _ in published] == ["fresh"]
    finally:
        await pipeline.stop()


def test_retry_policy_schedule() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=2, max_delay=5)
    assert [policy.delay(n) for n in range(1, 6)] == [2, 4, 5, 5, None]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    assert describe_error(RuntimeError()) == "RuntimeError"
    assert len(describe_error(ValueError("x" * 10_000))) == 2000
    steps = default_registry()
    assert steps.names() == ["digest", "analysis"]
    with pytest.raises(ValueError):
        steps.register("analysis", next(step for _, step in steps))  # names are unique


async def test_listener_throttles_progress_and_adopts_unknown_uploads(
    tmp_path: Path, state_store: dict[str, Any], files: FileStore
) -> None:
    pipeline = Pipeline(config(tmp_path, **state_store), files, steps=StepRegistry())
    await pipeline.start(workers=False)
    try:
        listener = PipelineListener(pipeline, progress_interval=60)
        info = UploadInfo(id="deferred", length=None, owner="alice")
        await listener.on_created(info)
        for offset in (10, 20):
            info.offset = offset
            listener.on_progress(info)
        await listener.drain()
        rec = await pipeline.get_recording("deferred", "alice")
        assert (rec.status, rec.offset) == (Status.UPLOADING, 10)  # the second report was throttled
        info.offset = 25
        await listener.on_finished(info)
        rec = await pipeline.get_recording("deferred", "alice")
        assert (rec.status, rec.offset, rec.length) == (Status.UPLOADED, 25, 25)
        # A finish for an upload the pipeline never saw created (e.g. enabled mid-upload) is adopted.
        await listener.on_finished(UploadInfo(id="stray", length=5, offset=5, owner="bob"))
        stray = await pipeline.get_recording("stray", "bob")
        assert stray.status is Status.UPLOADED and stray.job_id
        assert [job.upload_id for job in await pipeline.list_queue("bob")] == ["stray"]
        assert await pipeline.record_progress("nope", 3) is None
    finally:
        await pipeline.stop()
