"""Lease scenarios every lease store must pass (PostgreSQL; the SQLite file shared by workers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from storage_backends.filesystem import FileStore
from tusd_py.model.upload import UploadInfo
from tusd_py.pipeline.models import Recording
from tusd_py.pipeline.states import JobStatus, Status
from tusd_py.pipeline.steps import StepContext, StepRegistry
from tusd_py.pipeline.store import RecordingStore
from tusd_py.pipeline.worker import WorkerPool


async def uploaded(store: RecordingStore, upload_id: str, at: float) -> None:
    await store.create_recording(
        Recording(id=upload_id, owner="alice", status=Status.RECORDED, length=10, created_at=at, updated_at=at)
    )
    await store.mark_uploaded(upload_id, 10)


async def claimers_take_each_job_once(claimers: list[RecordingStore], jobs: int) -> None:
    """``claimers`` drain the queue (``jobs`` uploads made as ``u00``, ``u01``, ...) at once: every
    job is claimed by exactly one of them, and all are running."""

    async def drain(store: RecordingStore) -> list[str]:
        taken = []
        while (claim := await store.claim_job()) is not None:
            taken.append(claim.job.upload_id)
        return taken

    results = await asyncio.gather(*(drain(store) for store in claimers))
    everything = sorted(upload for taken in results for upload in taken)
    assert everything == [f"u{n:02d}" for n in range(jobs)]  # each exactly once
    assert len(await claimers[0].list_jobs(statuses=[JobStatus.RUNNING])) == jobs


class Clock(Protocol):
    def __call__(self) -> float: ...
    def advance(self, seconds: float) -> None: ...


async def expired_lease_changes_hands(first: RecordingStore, second: RecordingStore, clock: Clock) -> None:
    """Both stores open with a 30 s lease: ``first`` claims and renews once, then stops (it died);
    ``second`` takes the job over with a new token, and ``first`` can neither renew nor report."""
    await uploaded(first, "a", clock())
    claim = await first.claim_job()
    assert claim is not None
    assert await second.claim_job() is None  # held
    assert await second.next_due() == pytest.approx(clock() + 30)  # when to look again
    clock.advance(20)
    assert await first.renew_lease(claim.job.id, claim.job.claim_token)  # renewed: 30 s from now
    clock.advance(20)
    assert await second.claim_job() is None  # would have expired without the renewal
    clock.advance(11)  # first stopped renewing: its worker died
    taken = await second.claim_job()
    assert taken is not None and taken.job.id == claim.job.id
    assert taken.job.claim_token > claim.job.claim_token and taken.job.attempts == 2
    assert taken.recording.status is Status.PROCESSING
    # The old claimant, if it was only paused, can neither renew nor report.
    assert await first.renew_lease(claim.job.id, claim.job.claim_token) is False
    assert await first.complete_job(claim.job.id, claim.job.claim_token, {"stale": True}) is False
    assert await second.complete_job(taken.job.id, taken.job.claim_token, {"step": {"ok": 1}})
    done = await first.get_recording("a")
    assert done.status is Status.COMPLETED and done.results == {"step": {"ok": 1}}


async def frozen_worker_loses_its_job(frozen_store: RecordingStore, live_store: RecordingStore, tmp_path: Path) -> None:
    """The worker that froze mid-job (renews nothing) loses the job to the other once its lease
    (1 s) runs out; its late report is ignored. Both stores closed at the end."""
    files = FileStore(tmp_path / "files")
    await files.start()
    info = UploadInfo(id="a" * 32, length=3, metadata={})
    await files.create(info)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"abc"

    await files.write(info, chunks())
    runs: list[str] = []

    def step_for(name: str) -> Any:
        async def step(ctx: StepContext) -> dict[str, Any]:
            runs.append(name)
            if name == "frozen":
                await asyncio.Event().wait()  # hangs like a paused process
            return {"by": name}

        return step

    async def renews_nothing(job_id: str, claim_token: int) -> bool:
        await asyncio.Event().wait()  # a stopped process renews nothing
        return True

    frozen_store.renew_lease = renews_nothing  # type: ignore[method-assign]
    pools = []
    for name, store in (("frozen", frozen_store), ("live", live_store)):
        registry = StepRegistry()
        registry.register("work", step_for(name))
        await store.open()
        pools.append(WorkerPool(store, registry, files, concurrency=1, poll_interval=0.5))
    frozen, live = pools
    try:
        await frozen.start()
        await uploaded(frozen_store, info.id, time.time())
        for _ in range(200):  # bounded: 10 s
            if runs:
                break
            await asyncio.sleep(0.05)
        assert runs == ["frozen"]
        await live.start()
        for _ in range(200):
            rec = await live_store.get_recording(info.id)
            if rec.status is Status.COMPLETED:
                break
            await asyncio.sleep(0.05)
        assert rec.status is Status.COMPLETED and rec.results == {"work": {"by": "live"}}
        assert runs == ["frozen", "live"]
    finally:
        for pool in pools:
            await pool.stop(grace=0.1)
        await frozen_store.close()
        await live_store.close()
        await files.close()
