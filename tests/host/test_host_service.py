"""The host service of ``--processes N`` across "workers" (several HostClients on one service):
release requests, a dead or stalled worker's locks, fencing on the filesystem, quota races, the
ledger rebuilt once per run. The shared lock semantics: tests/locks/test_locking.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from storage_backends.filesystem import FileStore
from tests.locks.scenarios import release_request_crosses_lockers
from tusd_py.host.client import HostClient
from tusd_py.host.locker import HostFence, HostLocker
from tusd_py.host.quotas import HostQuotaLedger
from tusd_py.host.service import HostService
from tusd_py.locks.locker import LockUnavailable, UploadLocked
from tusd_py.model.fencing import FenceLost
from tusd_py.model.upload import UploadInfo
from tusd_py.quotas.ledger import QuotaExceeded, QuotaLimits

LIMITS = QuotaLimits(max_bytes=1000, max_unfinished=5)

Make = Callable[..., Awaitable[HostLocker]]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[HostService]:
    host = HostService(str(tmp_path / "host.sock"), lease=1.0, quota_limits=LIMITS)
    await host.start()
    yield host
    await host.close()


@pytest.fixture
async def make(service: HostService) -> AsyncIterator[Make]:
    made: list[HostLocker] = []

    async def build(wait: float = 2.0) -> HostLocker:
        locker = HostLocker(HostClient(service.path), timeout=wait)
        await locker.start()
        made.append(locker)
        return locker

    yield build
    for locker in made:
        await locker.close()


def stall(locker: HostLocker) -> None:
    """What a SIGSTOPped worker looks like from the service: it says nothing more."""
    locker.client._tasks[1].cancel()  # the pings


async def chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def test_release_request_reaches_the_holder_in_another_worker(make: Make) -> None:
    one, two = await make(), await make()
    assert await release_request_crosses_lockers(one, two) > 0


async def test_try_lock_across_workers_and_tokens_grow(make: Make) -> None:
    one, two = await make(), await make()
    async with one.lock("up") as first:
        with pytest.raises(UploadLocked):
            async with two.try_lock("up"):
                pass
    async with two.try_lock("up") as second:
        assert second.token > first.token > 0


async def test_a_killed_workers_locks_are_free_at_once(make: Make, service: HostService) -> None:
    one, two = await make(), await make(wait=5.0)
    entered = one.lock("up")
    await entered.__aenter__()  # never exited: the worker is killed holding it
    waiter = asyncio.create_task(two.lock("up").__aenter__())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await one.client.close()  # SIGKILL closes its socket
    await asyncio.wait_for(waiter, 5)
    assert loop.time() - began < 0.5  # at once, not after a lease


async def test_a_stalled_worker_loses_its_locks_after_the_lease_and_commits_nothing(make: Make, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "data")
    await store.start()
    await store.create(UploadInfo(id="up", length=20))
    one, two = await make(), await make(wait=5.0)
    async with one.lock("up") as stale:
        info = await store.get_info("up")
        info.offset = await store.write(info, chunks(b"aaaaa"), fence=stale)
        stall(one)  # paused past its lease: the service hands the lock on
        loop = asyncio.get_running_loop()
        began = loop.time()
        async with two.lock("up") as fresh:
            assert 0.5 <= loop.time() - began < 4.5
            newer = await store.get_info("up")
            await store.write(newer, chunks(b"bbbbb"), fence=fresh)
        with pytest.raises(FenceLost):
            await store.write(info, chunks(b"ccccc"), fence=stale)
    assert (tmp_path / "data" / "up").read_bytes() == b"aaaaabbbbb"
    await store.close()


async def test_a_fence_check_is_local_while_the_lease_is_confirmed(make: Make) -> None:
    one = await make()
    async with one.lock("up") as fence:
        assert isinstance(fence, HostFence)
        asked: list[str] = []
        original = one.client.request

        async def counting(op: str, *args: object, **kwargs: float | None) -> list[object]:
            asked.append(op)
            return await original(op, *args, **kwargs)

        one.client.request = counting  # type: ignore[method-assign]
        await fence.check()
        assert asked == []  # confirmed by the lock's own answer a moment ago
        one.client.confirmed_until = 0.0  # as if no answer came for a while
        await fence.check()
        assert asked == ["C"]


async def test_a_waiter_that_gives_up_leaves_no_trace(make: Make) -> None:
    one, two = await make(), await make(wait=5.0)
    async with one.lock("up"):
        waiter = asyncio.create_task(two.lock("up").__aenter__())
        await asyncio.sleep(0.05)
        waiter.cancel()  # its client went away while it waited
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with one.try_lock("up"):  # nobody was granted the lock behind our back
        pass
    assert not two.is_locked("up")


async def test_a_waiter_cancelled_just_as_its_grant_arrives_gives_the_lock_back(make: Make) -> None:
    """The grant is routed (its future done) and the waiting task cancelled before it resumes: the
    answer is lost to the caller, so the lock must go back to the service, not stay held for good."""
    one, two = await make(), await make(wait=5.0)
    async with one.lock("up"):
        waiter = asyncio.create_task(two.lock("up").__aenter__())
        await asyncio.sleep(0.05)
        route = two.client._route

        def route_then_cancel(message: list[object]) -> None:
            route(message)
            if message[0] == "G":
                waiter.cancel()  # in the same turn as the grant: the task has not resumed yet

        two.client._route = route_then_cancel  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not two.is_locked("up")
    async with one.try_lock("up"):  # given back, not held until the worker dies
        pass


async def test_without_the_service_a_lock_is_503(make: Make, service: HostService) -> None:
    one = await make()
    await service.close()
    for _ in range(100):  # the reader notices the closed socket
        if one.client._writer is None:
            break
        await asyncio.sleep(0.02)
    with pytest.raises(LockUnavailable) as caught:
        async with one.lock("up"):
            pass
    assert caught.value.status == 503


async def test_workers_racing_for_a_users_quota_never_exceed_it(service: HostService) -> None:
    clients = [HostClient(service.path) for _ in range(4)]
    for client in clients:
        await client.start()
    ledgers = [HostQuotaLedger(LIMITS, client) for client in clients]
    try:

        async def create(n: int) -> bool:
            try:
                await ledgers[n % 4].reserve(UploadInfo(id=f"u{n}", length=300, owner="alice"))
            except QuotaExceeded:
                return False
            return True

        accepted = await asyncio.gather(*(create(n) for n in range(40)))
        assert sum(accepted) == 3  # 3 x 300 <= 1000 < 4 x 300
        usage = await ledgers[0].usage("alice")
        assert (usage.bytes, usage.unfinished) == (900, 3)
        with pytest.raises(QuotaExceeded) as caught:
            await ledgers[1].grow(UploadInfo(id="u0", length=None, owner="alice"), 500)
        assert caught.value.limit == "bytes" and "1000 bytes per user" in caught.value.reason
        first = next(n for n, ok in enumerate(accepted) if ok)
        await ledgers[2].finished(UploadInfo(id=f"u{first}", length=100, owner="alice"))
        await ledgers[3].release(f"u{first}")
        await ledgers[3].release(f"u{first}")  # idempotent
        assert await ledgers[0].room("alice") == 1000 - 600
    finally:
        for client in clients:
            await client.close()


async def test_the_ledger_is_rebuilt_once_per_run_by_the_first_worker(service: HostService, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "data")
    await store.start()
    await store.create(UploadInfo(id="old", length=400, owner="alice"))
    dead, first, second = (HostClient(service.path) for _ in range(3))
    for client in (dead, first, second):
        await client.start()
    try:
        # A worker that starts rebuilding and dies: its half is dropped, the next one does it all.
        assert (await dead.request("RB"))[2] == 1
        await dead.request("RA", [["ghost", "bob", 999, True]])
        waiting = asyncio.create_task(HostQuotaLedger(LIMITS, second).rebuild(store))
        await dead.close()
        await HostQuotaLedger(LIMITS, first).rebuild(store)
        await asyncio.wait_for(waiting, 5)
        assert (await HostQuotaLedger(LIMITS, first).usage("alice")).bytes == 400
        assert (await HostQuotaLedger(LIMITS, first).usage("bob")).bytes == 0
        late = HostClient(service.path)  # a worker restarted later finds it done
        await late.start()
        assert (await late.request("RB"))[2] == 0
        await late.close()
    finally:
        await first.close()
        await second.close()
        await store.close()
