import asyncio

import pytest

from tusd_py.locking import InProcessLocker, UploadLocked


async def test_lock_is_exclusive_per_upload() -> None:
    locker = InProcessLocker(timeout=0.2)
    async with locker.lock("a"):
        assert locker.is_locked("a")
        async with locker.lock("b"):  # other uploads are independent
            pass
        with pytest.raises(UploadLocked) as caught:
            async with locker.lock("a"):
                pass
        assert caught.value.status == 423
    assert not locker.is_locked("a")


async def test_holder_is_asked_to_let_go_and_newcomer_gets_the_lock() -> None:
    locker = InProcessLocker(timeout=2)
    asked = asyncio.Event()
    order: list[str] = []

    async def holder() -> None:
        async with locker.lock("a", on_release_request=asked.set):
            await asked.wait()
            order.append("holder released")

    task = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    async with locker.lock("a"):
        order.append("newcomer")
    await task
    assert order == ["holder released", "newcomer"]


async def test_waiters_queue_and_each_gets_the_lock_in_turn() -> None:
    locker = InProcessLocker(timeout=2)
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


async def test_lock_released_when_body_raises() -> None:
    locker = InProcessLocker(timeout=0.1)
    with pytest.raises(RuntimeError):
        async with locker.lock("a"):
            raise RuntimeError("boom")
    async with locker.lock("a"):
        pass
