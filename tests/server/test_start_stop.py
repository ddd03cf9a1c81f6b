"""Start and stop, once (tusd_py/server/runtime.py): a start that fails at any step leaves nothing
running, each started step is stopped once, in reverse order; serve, sweep and cleanup share them.

What is asserted is what can be seen from outside: the locker's close, the state file no longer
open in this process, no SQLite thread, no asyncio task left, no PostgreSQL session left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from conformance.live_server import free_port
from tusd_py.config.values import Config
from tusd_py.locks.locker import InProcessLocker
from tusd_py.model.errors import StateStoreUnavailable
from tusd_py.model.storage_errors import StorageError
from tusd_py.server.app import make_app
from tusd_py.server.runtime import STEPS, Step, serving_steps, started
from tusd_py.server.wiring import Parts, build_parts


class CountingLocker(InProcessLocker):
    """The in-process locker, telling each start and close."""

    def __init__(self) -> None:
        super().__init__(timeout=1.0)
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")
        await super().start()

    async def close(self) -> None:
        self.calls.append("close")
        await super().close()


class Boom(Exception):
    pass


def full_config(tmp_path: Path, **overrides: Any) -> Config:
    """Every part there is without a real service: auth (quotas), a webhook (the durable outbox),
    workers, the background loops."""
    settings: dict[str, Any] = {
        "storage_dir": str(tmp_path / "data"),
        "jwt_secret": "s" * 32,
        "hooks_url": f"http://127.0.0.1:{free_port()}/hooks",  # nothing listens; no event is sent here
        "workers": 1,
        "sweep_interval": 60,
        "cleanup_interval": 60,
        **overrides,
    }
    return Config(**settings)


def open_files_under(prefix: str) -> list[str]:
    """Paths under ``prefix`` this process holds open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(prefix):
                found.append(target)
    return found


class Leftovers:
    """What a test's start and stop may leave behind; threads other tests left are not its own."""

    def __init__(self) -> None:
        self.threads_before = set(threading.enumerate())

    def sqlite_threads(self) -> list[threading.Thread]:
        return [
            t for t in threading.enumerate() if t.name.startswith("pipeline-sqlite") and t not in self.threads_before
        ]

    async def assert_none(self, state_db: str) -> None:
        await asyncio.sleep(0)  # done callbacks of finished tasks
        assert [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        assert open_files_under(state_db) == []
        for thread in self.sqlite_threads():
            thread.join(timeout=5)  # a shut-down executor's idle thread exits at once
        assert [t.name for t in self.sqlite_threads() if t.is_alive()] == []


@pytest.fixture
def leftovers() -> Leftovers:
    return Leftovers()


def recorded(name: str, step: Step, log: list[str]) -> Step:
    @contextlib.asynccontextmanager
    async def step_in_log() -> AsyncIterator[None]:
        log.append(f"start {name}")
        entered = False
        try:
            async with step():
                entered = True
                yield
        finally:
            if entered:
                log.append(f"stop {name}")

    return step_in_log


def failing() -> contextlib.AbstractAsyncContextManager[None]:
    @contextlib.asynccontextmanager
    async def fail() -> AsyncIterator[None]:
        raise Boom("this step cannot start")
        yield

    return fail()


def serving_in_log(parts: Parts, log: list[str], fail_at: int | None = None) -> list[Step]:
    steps = [recorded(step.__name__, real, log) for step, real in zip(STEPS, serving_steps(parts), strict=True)]
    if fail_at is not None:
        steps[fail_at] = recorded(STEPS[fail_at].__name__, failing, log)
    return steps


NAMES = [step.__name__ for step in STEPS]


async def test_every_step_starts_in_order_and_stops_once_in_reverse(leftovers: Leftovers, tmp_path: Path) -> None:
    config = full_config(tmp_path)
    locker = CountingLocker()
    parts = build_parts(config, locker=locker)
    log: list[str] = []
    async with started(serving_in_log(parts, log)):
        assert log == [f"start {name}" for name in NAMES]
        running = {t.get_name() for t in asyncio.all_tasks()}
        assert {"reconciler", "recovery", "expiration-sweep", "failed-cleanup", "webhook-outbox"} <= running
        assert open_files_under(config.state_db_path)  # the recording store is open
    assert log[len(NAMES) :] == [f"stop {name}" for name in reversed(NAMES)]
    assert locker.calls == ["start", "close"]
    await leftovers.assert_none(config.state_db_path)


@pytest.mark.parametrize("fail_at", range(len(STEPS)), ids=NAMES)
async def test_a_step_that_fails_stops_the_ones_before_it_once_in_reverse(
    leftovers: Leftovers, tmp_path: Path, fail_at: int
) -> None:
    config = full_config(tmp_path)
    locker = CountingLocker()
    parts = build_parts(config, locker=locker)
    log: list[str] = []
    with pytest.raises(Boom):
        async with started(serving_in_log(parts, log, fail_at)):
            pytest.fail("started although a step failed")
    before = NAMES[:fail_at]
    assert log == [f"start {name}" for name in [*before, NAMES[fail_at]]] + [
        f"stop {name}" for name in reversed(before)
    ]
    assert locker.calls == ([] if fail_at == 0 else ["start", "close"])
    await leftovers.assert_none(config.state_db_path)


async def test_a_stop_that_fails_does_not_keep_the_others_from_stopping(leftovers: Leftovers, tmp_path: Path) -> None:
    config = full_config(tmp_path)
    locker = CountingLocker()
    parts = build_parts(config, locker=locker)
    broken = parts.pipeline.workers

    async def refuse_to_stop(grace: float = 30.0) -> None:
        await type(broken).stop(broken, grace)
        raise Boom("the worker pool failed to stop")

    broken.stop = refuse_to_stop  # type: ignore[method-assign]  # the injected fault
    with pytest.raises(Boom):
        async with started(serving_steps(parts)):
            pass
    assert locker.calls == ["start", "close"]
    await leftovers.assert_none(config.state_db_path)


# -- real faults, through the app and aiohttp's runner -----------------------------------------------


async def start_app(app: web.Application) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    return runner


async def refused_start(app: web.Application, expected: type[BaseException]) -> None:
    """The app does not start; aiohttp's cleanup after it (as connections.serve runs it) stops nothing twice."""
    runner = web.AppRunner(app)
    with pytest.raises(expected):
        await runner.setup()
    await runner.cleanup()


async def test_the_app_stops_its_parts_once_after_serving(leftovers: Leftovers, tmp_path: Path) -> None:
    config = full_config(tmp_path)
    locker = CountingLocker()
    runner = await start_app(make_app(config, locker=locker))
    assert locker.calls == ["start"]
    await runner.cleanup()
    assert locker.calls == ["start", "close"]
    await leftovers.assert_none(config.state_db_path)


def real_fault(fault: str, tmp_path: Path, taken_port: int) -> tuple[dict[str, Any], type[Exception]]:
    """Config overrides that make one step fail for real, and what the start then raises."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    if fault == "storage not writable":  # step 2
        return {"storage_dir": str(blocker / "data"), "state_db": str(tmp_path / "state.sqlite3")}, StorageError
    if fault == "PostgreSQL refuses":  # step 3
        return {"database_url": f"postgresql://tusd@127.0.0.1:{free_port()}/tusd"}, StateStoreUnavailable
    if fault == "state file not usable":  # step 6
        return {"state_db": str(blocker / "state.sqlite3")}, OSError
    return {"host": "127.0.0.1", "metrics_port": taken_port}, OSError  # the last step


@pytest.mark.parametrize(
    "fault", ["storage not writable", "PostgreSQL refuses", "state file not usable", "metrics port taken"]
)
async def test_a_real_fault_stops_what_started_before_it(
    leftovers: Leftovers, tmp_path: Path, taken_port: int, fault: str
) -> None:
    overrides, error = real_fault(fault, tmp_path, taken_port)
    config = full_config(tmp_path, **overrides)
    locker = CountingLocker()
    await refused_start(make_app(config, locker=locker), error)
    assert locker.calls == ["start", "close"]
    await leftovers.assert_none(config.state_db_path)


async def test_a_redis_that_is_down(leftovers: Leftovers, tmp_path: Path) -> None:
    from tusd_py.locks.redis_locker import LockServiceError

    config = full_config(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    await refused_start(make_app(config), LockServiceError)
    await leftovers.assert_none(config.state_db_path)


async def sessions(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


async def test_postgresql_sessions_are_closed_after_a_late_failure(
    leftovers: Leftovers, tmp_path: Path, database_url: str, taken_port: int
) -> None:
    config = full_config(tmp_path, database_url=database_url, host="127.0.0.1", metrics_port=taken_port)
    locker = CountingLocker()
    await refused_start(make_app(config, locker=locker), OSError)
    assert locker.calls == ["start", "close"]
    await leftovers.assert_none(config.state_db_path)
    assert await sessions(database_url) == 0


async def test_postgresql_sessions_are_closed_after_serving(
    leftovers: Leftovers, tmp_path: Path, database_url: str
) -> None:
    config = full_config(tmp_path, database_url=database_url)
    runner = await start_app(make_app(config))
    assert await sessions(database_url) >= 1  # the pool (and its LISTEN connection)
    await runner.cleanup()
    await leftovers.assert_none(config.state_db_path)
    assert await sessions(database_url) == 0
