"""Memory of the S3 backend: one byte budget per store bounds the part buffers of all concurrent
writes together (storage_backends/s3_budget.py), without deadlock, against a real SeaweedFS."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from conformance.seaweed import SeaweedS3
from storage_backends.s3 import S3Store
from storage_backends.s3_budget import ByteBudget
from storage_backends.s3_ledger import MIB
from tests.s3.conftest import make_config
from tests.s3.s3_support import chunks, payload, read_all
from tests.s3.test_s3_store import finish
from tusd_py.model.upload import UploadInfo


async def test_budget_serves_in_order_and_survives_cancellation() -> None:
    budget = ByteBudget(10)
    await budget.acquire(6)
    order: list[str] = []

    async def take(name: str, size: int) -> None:
        await budget.acquire(size)
        order.append(name)

    big = asyncio.create_task(take("big", 8))
    await asyncio.sleep(0)
    small = asyncio.create_task(take("small", 2))  # would fit now, but must not overtake "big"
    gone = asyncio.create_task(take("gone", 1))
    await asyncio.sleep(0)
    assert order == [] and budget.waits == 3
    gone.cancel()
    await asyncio.sleep(0)
    budget.release(6)
    await asyncio.gather(big, small)
    assert order == ["big", "small"] and budget.in_use == 10
    budget.release(10)
    # A reservation above the whole budget (a part size raised for a huge upload) runs alone.
    await budget.acquire(25)
    late = asyncio.create_task(take("late", 1))
    await asyncio.sleep(0)
    assert not late.done()
    budget.release(25)
    await late
    budget.release(1)
    assert (budget.in_use, budget.peak) == (0, 25)
    with pytest.raises(RuntimeError):
        budget.release(1)


@pytest.mark.s3
async def test_concurrent_patches_share_one_budget(seaweed: SeaweedS3) -> None:
    """8 uploads x 3 parts at once, each as a 1 MiB PATCH (a tail segment) then a 14 MiB PATCH
    (promoting it): part buffers of all of them together never exceed part_size x concurrency,
    nothing deadlocks, and every upload is byte-identical."""
    config = make_config(seaweed, f"mem-{secrets.token_hex(4)}/", part_size=5 * MIB, part_concurrency=2)
    store = S3Store(config)
    await store.start()
    try:
        count, size = 8, 15 * MIB
        datas = [payload(size, seed=index) for index in range(count)]
        ids = [f"mem{index}" for index in range(count)]
        for upload_id in ids:
            await store.create(UploadInfo(id=upload_id, length=size))

        async def patch(upload_id: str, data: bytes, start: int, end: int) -> None:
            info = await store.get_info(upload_id)
            assert info.offset == start
            assert await store.write(info, chunks(data[start:end], 256 * 1024)) == end

        for start, end in [(0, MIB), (MIB, size)]:
            async with asyncio.timeout(120):  # a deadlock fails here instead of hanging
                await asyncio.gather(*(patch(u, d, start, end) for u, d in zip(ids, datas, strict=True)))
        budget = store.budget
        assert budget.capacity == 10 * MIB
        assert 5 * MIB <= budget.peak <= budget.capacity
        assert budget.waits > 0, "the uploads never competed for the budget: the test proves nothing"
        assert budget.in_use == 0
        for upload_id, data in zip(ids, datas, strict=True):
            assert await read_all(store, await finish(store, upload_id)) == data
    finally:
        await store.close()
