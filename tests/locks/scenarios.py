"""Scenarios every shared locker must pass with two lockers (two workers, or two instances)."""

from __future__ import annotations

import asyncio

from tusd_py.locks.locker import Locker


async def release_request_crosses_lockers(one: Locker, two: Locker) -> int:
    """``one`` holds and waits to be asked; ``two``'s lock asks across (only the locker's own
    message can set the event), gets the lock once ``one`` let go. The newcomer's fence token."""
    asked = asyncio.Event()
    holding = asyncio.Event()
    order: list[str] = []

    async def holder() -> None:
        async with one.lock("up", on_release_request=asked.set):
            holding.set()
            await asked.wait()
            order.append("released")

    task = asyncio.create_task(holder())
    await asyncio.wait_for(holding.wait(), 5)
    async with two.lock("up") as fence:
        order.append("newcomer")
        assert two.is_locked("up") and not one.is_locked("up")
        token = fence.token
    await task
    assert order == ["released", "newcomer"]
    return token
