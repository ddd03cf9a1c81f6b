"""Reconciler: state-store writes kept while the database is unreachable, applied in order once it is back."""

from __future__ import annotations

import asyncio

from tusd_py.database.reconcile import Reconciler
from tusd_py.model.errors import StateStoreUnavailable


class Flaky:
    """A state store that is down until told otherwise (the fault a real database cannot be asked for on cue)."""

    def __init__(self) -> None:
        self.up = False
        self.applied: list[str] = []

    def action(self, name: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            if not self.up:
                raise StateStoreUnavailable("connection refused")
            self.applied.append(name)

        return run


async def test_actions_wait_while_down_and_land_in_order_once_up() -> None:
    store, reconciler = Flaky(), Reconciler(first_delay=0.01, max_delay=0.05)
    assert await reconciler.attempt("finished:a", store.action("finished a")) is False
    assert await reconciler.attempt("finished:b", store.action("finished b")) is False
    assert (
        await reconciler.attempt("finished:a", store.action("finished a, again")) is False
    )  # replaces, keeps its place
    assert reconciler.pending == ["finished:a", "finished:b"]
    assert await reconciler.run_pending() == 0 and store.applied == []  # still down: nothing lost
    store.up = True
    loop = asyncio.create_task(reconciler.run())
    try:
        for _ in range(200):  # bounded
            if not reconciler.pending:
                break
            await asyncio.sleep(0.01)
    finally:
        loop.cancel()
    assert store.applied == ["finished a, again", "finished b"] and reconciler.pending == []
    assert await reconciler.attempt("finished:c", store.action("finished c")) is True  # up: runs at once
    assert store.applied[-1] == "finished c"


async def test_other_errors_are_not_retried_forever() -> None:
    reconciler = Reconciler(first_delay=0.01)
    calls: list[str] = []

    async def write() -> None:  # down at first; once back, the write itself turns out wrong
        calls.append("try")
        if len(calls) == 1:
            raise StateStoreUnavailable("down")
        raise ValueError("a bug, not an outage")

    await reconciler.attempt("x", write)
    assert reconciler.pending == ["x"]
    assert await reconciler.run_pending() == 1 and reconciler.pending == [] and calls == ["try", "try"]


async def test_a_later_write_about_the_same_upload_waits_behind_an_earlier_one() -> None:
    store, reconciler = Flaky(), Reconciler(first_delay=0.01)
    await reconciler.attempt("recording.finished:u1", store.action("finished u1"))
    store.up = True  # back before the retry: the termination must still not overtake the finish
    assert await reconciler.attempt("recording.terminated:u1", store.action("terminated u1")) is False
    assert await reconciler.attempt("recording.finished:u2", store.action("finished u2")) is True  # another upload
    assert await reconciler.run_pending() == 2
    assert store.applied == ["finished u2", "finished u1", "terminated u1"]
