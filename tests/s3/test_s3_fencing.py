"""Fencing on S3: a holder whose Redis lease ran out records no part and no ledger (real SeaweedFS,
real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage_backends.s3 import S3Store
from storage_backends.s3_ledger import MIB
from tests.s3.s3_support import chunks, payload, read_all
from tusd_py.locks.redis_locker import RedisFence, RedisLocker
from tusd_py.model.fencing import FenceLost
from tusd_py.model.upload import UploadInfo

pytestmark = [pytest.mark.s3, pytest.mark.redis]


@pytest.fixture
async def lockers(redis_url: str) -> AsyncIterator[tuple[RedisLocker, RedisLocker]]:
    one = RedisLocker(redis_url, timeout=5.0, lease=1.0)
    two = RedisLocker(redis_url, timeout=5.0, lease=1.0)
    await one.start()
    await two.start()
    yield one, two
    await one.close()
    await two.close()


@pytest.mark.parametrize("size", [100_000, 6 * MIB], ids=["tail segment", "whole part"])
async def test_stale_holder_commits_nothing_on_s3(
    s3_store: S3Store, lockers: tuple[RedisLocker, RedisLocker], size: int
) -> None:
    one, two = lockers
    data = payload(3 * size, seed=7)
    await s3_store.create(UploadInfo(id="up", length=len(data)))
    async with one.lock("up") as stale:
        info = await s3_store.get_info("up")
        info.offset = await s3_store.write(info, chunks(data[:size], 64 * 1024), fence=stale)
        assert isinstance(stale, RedisFence) and stale.renewer is not None
        stale.renewer.cancel()  # paused past its lease: its renewals stop
        async with two.lock("up") as fresh:
            newer = await s3_store.get_info("up")
            assert newer.offset == size
            newer.offset = await s3_store.write(newer, chunks(data[size : 2 * size], 64 * 1024), fence=fresh)
        with pytest.raises(FenceLost):  # the stale holder wakes up with its old ledger
            await s3_store.write(info, chunks(payload(size, seed=9), 64 * 1024), fence=stale)
    async with two.lock("up") as fence:
        info = await s3_store.get_info("up")
        assert info.offset == 2 * size
        info.offset = await s3_store.write(info, chunks(data[2 * size :], 64 * 1024), fence=fence)
        await s3_store.finish(info)
    assert await read_all(s3_store, await s3_store.get_info("up")) == data
