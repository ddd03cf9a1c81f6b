"""The supervisor requeues the previous run's running jobs before its first worker starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.pipeline.lease_scenarios import uploaded
from tusd_py.config.values import Config
from tusd_py.host.recovery import requeue_previous_runs_jobs
from tusd_py.pipeline.models import JobStatus
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore


def test_jobs_left_running_by_the_last_run_are_queued_at_once(tmp_path: Path) -> None:
    config = Config(storage_dir=str(tmp_path), processes=2)

    async def left_running() -> None:
        store = SQLiteRecordingStore(config.state_db_path, lease_seconds=60)
        await store.open()
        await uploaded(store, "a", 0.0)
        assert await store.claim_job() is not None  # then the whole server was killed
        await store.close()

    async def statuses() -> list[JobStatus]:
        store = SQLiteRecordingStore(config.state_db_path, lease_seconds=60)
        await store.open()
        try:
            return [job.status for job in await store.list_jobs()]
        finally:
            await store.close()

    asyncio.run(left_running())
    requeue_previous_runs_jobs(config)
    assert asyncio.run(statuses()) == [JobStatus.QUEUED]  # not a minute later, when its lease ran out
