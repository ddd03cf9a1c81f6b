"""The Redis locker across "instances" (several RedisLocker objects on one real Redis), its
fencing on the filesystem backend, and Redis going away and coming back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from conformance.redis_server import RedisServer
from storage_backends.file_fence import FENCE_SUFFIX, FileFence
from storage_backends.filesystem import FileStore
from tests.locks.scenarios import release_request_crosses_lockers
from tusd_py.locks.locker import LockUnavailable, UploadLocked
from tusd_py.locks.redis_locker import PREFIX, RELEASED_CHANNEL, LockServiceError, RedisFence, RedisLocker
from tusd_py.model.fencing import FenceLost
from tusd_py.model.upload import UploadInfo

pytestmark = pytest.mark.redis

Make = Callable[..., Awaitable[RedisLocker]]


@pytest.fixture
async def make(redis_url: str) -> AsyncIterator[Make]:
    made: list[RedisLocker] = []

    async def build(url: str = redis_url, wait: float = 2.0, lease: float = 5.0) -> RedisLocker:
        locker = RedisLocker(url, timeout=wait, lease=lease)
        await locker.start()
        made.append(locker)
        return locker

    yield build
    for locker in made:
        await locker.close()


async def chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def stop_renewing(fence: object) -> None:
    """What a SIGSTOPped holder looks like from Redis: its renewals stop."""
    assert isinstance(fence, RedisFence) and fence.renewer is not None
    fence.renewer.cancel()


async def test_release_request_reaches_the_holder_on_another_instance(make: Make) -> None:
    one, two = await make(), await make()
    await release_request_crosses_lockers(one, two)


async def test_a_release_is_announced_only_when_another_instance_waits(make: Make, redis_url: str) -> None:
    one, two = await make(), await make(wait=5.0)
    listener = aioredis.from_url(redis_url, decode_responses=True)
    bus = listener.pubsub()
    await bus.subscribe(RELEASED_CHANNEL)
    assert (await bus.get_message(timeout=5))["type"] == "subscribe"

    async def announced() -> list[str]:
        heard = []
        while (message := await bus.get_message(timeout=0.5)) is not None:
            heard.append(message["data"])
        return heard

    try:
        async with one.lock("quiet"):
            pass
        assert await announced() == []  # nobody waited: no broadcast to every instance
        held = one.lock("busy")
        await held.__aenter__()
        waiter = asyncio.create_task(two.lock("busy").__aenter__())
        for _ in range(100):  # the waiter's first try leaves its flag
            if await listener.exists(PREFIX + "waiting:busy"):
                break
            await asyncio.sleep(0.05)
        await held.__aexit__(None, None, None)
        await asyncio.wait_for(waiter, 5)
        assert await announced() == ["busy"]
        assert not await listener.exists(PREFIX + "waiting:busy")  # taken with the announcement
    finally:
        await bus.aclose()
        await listener.aclose()


async def test_try_lock_across_instances_and_tokens_grow(make: Make) -> None:
    one, two = await make(), await make()
    async with one.lock("up") as first:
        with pytest.raises(UploadLocked):
            async with two.try_lock("up"):
                pass
    async with two.try_lock("up") as second:
        assert second.token > first.token > 0


async def test_a_dead_holders_lock_is_free_one_lease_later(make: Make) -> None:
    one, two = await make(lease=1.0), await make(wait=5.0)
    entered = one.lock("up")
    fence = await entered.__aenter__()  # never exited: the instance "died" holding it
    stop_renewing(fence)
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with two.lock("up"):
        waited = loop.time() - began
    assert 0.5 <= waited < 4.5


async def test_stale_holder_commits_nothing_on_the_filesystem(make: Make, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "data")
    await store.start()
    await store.create(UploadInfo(id="up", length=20))
    one, two = await make(lease=1.0), await make(wait=5.0)
    async with one.lock("up") as stale:
        info = await store.get_info("up")
        info.offset = await store.write(info, chunks(b"aaaaa"), fence=stale)
        stop_renewing(stale)  # paused past its lease
        async with two.lock("up") as fresh:
            newer = await store.get_info("up")
            await store.write(newer, chunks(b"bbbbb"), fence=fresh)
        with pytest.raises(FenceLost):
            await store.write(info, chunks(b"ccccc"), fence=stale)
    assert (tmp_path / "data" / "up").read_bytes() == b"aaaaabbbbb"
    assert (await store.get_info("up")).offset == 10
    await store.terminate("up")
    assert not (tmp_path / "data" / ("up" + FENCE_SUFFIX)).exists()


def test_file_fence_refuses_an_older_token_and_a_moved_end(tmp_path: Path) -> None:
    """The filesystem's own guard, without Redis: what a holder whose Redis check passed just
    before a long pause meets when it writes afterwards."""
    data = tmp_path / "up"
    data.write_bytes(b"")
    with open(data, "ab") as out:
        with FileFence(tmp_path / "up.fence", 20) as newer, newer.held(out.fileno(), 0):
            out.write(b"new")
            out.flush()
        with FileFence(tmp_path / "up.fence", 10) as older, pytest.raises(FenceLost), older.held(out.fileno(), 0):
            pass
        with FileFence(tmp_path / "up.fence", 30) as newest, pytest.raises(FenceLost), newest.held(out.fileno(), 0):
            pass  # expects an empty file: bytes it did not know about are there
    assert data.read_bytes() == b"new"


async def test_redis_down_gives_503_then_recovers_by_itself(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis:
        locker = RedisLocker(redis.url, timeout=1.0, lease=2.0)
        await locker.start()
        try:
            async with locker.lock("up"):
                pass
            redis.stop()
            with pytest.raises(LockUnavailable) as caught:
                async with locker.lock("up"):
                    pass
            assert caught.value.status == 503 and "cannot be reached" in caught.value.reason
            redis.start()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            async with locker.lock("up"):
                assert loop.time() < deadline
            await asyncio.wait_for(locker.bus_ready.wait(), 10)  # the subscription is back too
        finally:
            await locker.close()


async def test_a_holder_that_loses_redis_stops_committing(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "data")
    await store.start()
    await store.create(UploadInfo(id="up", length=20))
    with RedisServer(tmp_path / "redis") as redis:
        locker = RedisLocker(redis.url, timeout=1.0, lease=2.0)
        await locker.start()
        try:
            async with locker.lock("up") as fence:
                info = await store.get_info("up")
                info.offset = await store.write(info, chunks(b"12345"), fence=fence)
                redis.stop()
                with pytest.raises(FenceLost) as caught:
                    await store.write(info, chunks(b"67890"), fence=fence)
                assert caught.value.unreachable
        finally:
            redis.start()
            await locker.close()
    assert (await store.get_info("up")).offset == 5


async def test_unreachable_redis_refuses_to_start() -> None:
    from conformance.live_server import free_port

    locker = RedisLocker(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(LockServiceError, match="cannot reach Redis"):
        await locker.start()
    with pytest.raises(LockServiceError, match="invalid Redis URL"):
        await RedisLocker("http://127.0.0.1/").start()
