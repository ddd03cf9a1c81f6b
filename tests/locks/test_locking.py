"""Lock semantics, asserted the same way for the in-process locker, the host locker of
``--processes N`` (tusd_py/host/) and the Redis locker."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tusd_py.host.client import HostClient
from tusd_py.host.locker import HostLocker
from tusd_py.host.service import HostService
from tusd_py.locks.locker import InProcessLocker, Locker, UploadLocked

MakeLocker = Callable[[float], Awaitable[Locker]]


@pytest.fixture(params=["in-process", "host", pytest.param("redis", marks=pytest.mark.redis)])
async def make_locker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeLocker]:
    """Builds started lockers of one kind (each Redis locker is one "instance", each host locker
    one worker process of a supervisor's host service)."""
    made: list[Locker] = []
    service = HostService(str(tmp_path / "host.sock"), lease=5)
    if request.param == "host":
        await service.start()

    async def make(wait: float) -> Locker:
        if request.param == "in-process":
            locker: Locker = InProcessLocker(timeout=wait)
        elif request.param == "host":
            locker = HostLocker(HostClient(service.path), timeout=wait)
        else:
            from tusd_py.locks.redis_locker import RedisLocker

            locker = RedisLocker(request.getfixturevalue("redis_url"), timeout=wait, lease=5)
        await locker.start()
        made.append(locker)
        return locker

    yield make
    for locker in made:
        await locker.close()
    await service.close()


async def test_lock_is_exclusive_per_upload(make_locker: MakeLocker) -> None:
    locker = await make_locker(0.2)
    async with locker.lock("a"):
        assert locker.is_locked("a")
        async with locker.lock("b"):  # other uploads are independent
            pass
        with pytest.raises(UploadLocked) as caught:
            async with locker.lock("a"):
                pass
        assert caught.value.status == 423
    assert not locker.is_locked("a")


async def test_holder_is_asked_to_let_go_and_newcomer_gets_the_lock(make_locker: MakeLocker) -> None:
    locker = await make_locker(2)
    asked = asyncio.Event()
    order: list[str] = []
    holding = asyncio.Event()

    async def holder() -> None:
        async with locker.lock("a", on_release_request=asked.set):
            holding.set()
            await asked.wait()
            order.append("holder released")

    task = asyncio.create_task(holder())
    await asyncio.wait_for(holding.wait(), 5)
    async with locker.lock("a"):
        order.append("newcomer")
    await task
    assert order == ["holder released", "newcomer"]


async def test_waiters_queue_and_each_gets_the_lock_in_turn(make_locker: MakeLocker) -> None:
    locker = await make_locker(5)
    inside = 0
    peak = 0

    async def worker() -> None:
        nonlocal inside, peak
        async with locker.lock("a"):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.005)
            inside -= 1

    await asyncio.gather(*(worker() for _ in range(10)))
    assert peak == 1
    assert not locker.is_locked("a")


async def test_lock_released_when_body_raises(make_locker: MakeLocker) -> None:
    locker = await make_locker(0.1)
    with pytest.raises(RuntimeError):
        async with locker.lock("a"):
            raise RuntimeError("boom")
    async with locker.lock("a"):
        pass


async def test_try_lock_never_asks_the_holder(make_locker: MakeLocker) -> None:
    locker = await make_locker(1)
    asked: list[str] = []
    async with locker.lock("a", on_release_request=lambda: asked.append("asked")):
        with pytest.raises(UploadLocked):
            async with locker.try_lock("a"):
                pass
    assert asked == []
    async with locker.try_lock("a"):
        assert locker.is_locked("a")


async def test_holder_that_does_not_let_go_gives_the_newcomer_423_in_time(make_locker: MakeLocker) -> None:
    locker = await make_locker(0.5)
    asked = asyncio.Event()
    async with locker.lock("a", on_release_request=asked.set):
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(UploadLocked):
            async with locker.lock("a"):
                pass
        waited = loop.time() - began
    assert asked.is_set()
    assert 0.4 <= waited < 5  # the timeout, not forever (generous upper bound: a loaded machine)
