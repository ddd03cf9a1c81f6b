"""Waiting for a condition in tests: polled, bounded by a deadline, from sync and async code alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Whether ``predicate`` came true within ``timeout`` seconds (blocking; for subprocess servers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


async def until(predicate: Callable[[], object], seconds: float = 10.0) -> None:
    """Return once ``predicate`` is true; fail the test after ``seconds`` (asyncio, in-process servers)."""
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")
