"""The queue depth for metrics is counted by the store in one statement, however long the queue."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tests.pipeline.statements import statements, touching
from tusd_py.pipeline.models import Recording
from tusd_py.pipeline.states import Status
from tusd_py.pipeline.store import MAX_PAGE_SIZE, RecordingStore

if TYPE_CHECKING:
    from conftest import FakeClock

QUEUED = MAX_PAGE_SIZE + 20  # more than one page: reading rows to count them stopped at a page


async def test_queue_depth_counts_every_job_in_one_statement(store: RecordingStore, clock: FakeClock) -> None:
    first = clock()

    async def finished(n: int) -> None:
        rec = Recording(id=f"up{n:04d}", owner="alice", status=Status.RECORDED, length=1, created_at=first,
                        updated_at=first)  # fmt: skip
        await store.create_recording(rec)
        await store.mark_uploaded(rec.id, 1)

    for start in range(0, QUEUED + 2, 50):
        await asyncio.gather(*(finished(n) for n in range(start, min(start + 50, QUEUED + 2))))
    clock.advance(5)
    assert await store.claim_job() is not None and await store.claim_job() is not None
    async with statements(store) as seen:
        depth = await store.queue_depth()
    assert depth.by_status == {"queued": QUEUED, "running": 2}
    assert depth.oldest_queued_at == first
    assert len(touching(seen, "jobs")) == 1, seen


async def test_an_empty_queue_counts_zero(store: RecordingStore) -> None:
    depth = await store.queue_depth()
    assert depth.by_status == {"queued": 0, "running": 0} and depth.oldest_queued_at is None
