"""Start and stop, written once: the ordered steps that bring the server's parts up and down.

Each step is an async context manager over the parts ``tusd_py/server/wiring.py`` built: what it
starts before its ``yield`` it stops after it. ``started`` enters the steps in order on one
``AsyncExitStack``, so

- a step that fails to start undoes its own partial start, then the steps before it are stopped
  in reverse order, each once, and the failure propagates (the command's one-line refusal);
- stop runs every started step in reverse order, even when one of them fails to stop.

The order (``SERVING`` for ``serve``; ``ONE_SHOT`` for the ``sweep`` and ``cleanup`` commands,
which run no workers, no webhook delivery and no background loops):

  1 locks        the upload locker (Redis with ``--redis-url``)
  2 storage      the store's start-up check (bucket, writable directory); its client closed last
  3 database     the PostgreSQL pool and migrations (``--database-url``)
  4 hooks        nothing to start; at stop, running hooks get ``--shutdown-timeout``
  5 quotas       the ledger (serving: adopts the stored uploads, ``rebuild``)
  6 recordings   the recording store (SQLite file or PostgreSQL)
  7 workers      post-finish processing                                    (serving only)
  8 outbox       durable webhook delivery; unsent rows stay for the next start  (serving only)
  9 reconciler   retries of state-store writes; at stop, one last try
 10 listener     at stop, progress reports still queued land before the stores close
 11 background   recovery, the expiry sweep, the cleanup of failed recordings (serving only)

``make_app`` runs ``started(serving_steps(parts) + the HTTP layer's steps)`` as the app's one
``cleanup_ctx`` entry (aiohttp stops it after the last request); the one-shot commands enter
``started(one_shot_steps(parts))`` around their work.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import structlog

from tusd_py.server.background import cleanup_periodically, recover, sweep_periodically
from tusd_py.server.wiring import Parts

log = structlog.get_logger(__name__)

#: One start-and-stop step, ready to enter.
Step = Callable[[], AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def started(steps: Sequence[Step]) -> AsyncIterator[None]:
    """Start ``steps`` in order; on leaving (or when a step fails to start) stop the started ones in reverse."""
    async with contextlib.AsyncExitStack() as stack:
        for step in steps:
            await stack.enter_async_context(step())
        yield


@contextlib.asynccontextmanager
async def locks(parts: Parts, serving: bool) -> AsyncIterator[None]:
    locker = parts.service.locker
    await locker.start()  # a locker that cannot start closes what it opened (RedisLocker)
    try:
        yield
    finally:
        await locker.close()


@contextlib.asynccontextmanager
async def storage(parts: Parts, serving: bool) -> AsyncIterator[None]:
    store = parts.service.store
    try:
        # A failed check may already have opened a client (S3's session): closed below all the same.
        await store.start()
        yield
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def database(parts: Parts, serving: bool) -> AsyncIterator[None]:
    if parts.database is None:
        yield
        return
    # The store and the ledger open it too (reference-counted): the pool closes with this step.
    await parts.database.open()  # unreachable: StateStoreUnavailable, nothing left open
    try:
        yield
    finally:
        await parts.database.close()


@contextlib.asynccontextmanager
async def hooks(parts: Parts, serving: bool) -> AsyncIterator[None]:
    try:
        yield
    finally:
        if parts.service.hooks is not None:
            await parts.service.hooks.drain(timeout=parts.config.shutdown_timeout)


@contextlib.asynccontextmanager
async def quotas(parts: Parts, serving: bool) -> AsyncIterator[None]:
    ledger = parts.service.quotas
    if ledger is None:
        yield
        return
    await ledger.open()
    try:
        if serving:  # a one-shot command's ledger counts only what it changes
            await ledger.rebuild(parts.service.store)
        yield
    finally:
        await ledger.close()


@contextlib.asynccontextmanager
async def recordings(parts: Parts, serving: bool) -> AsyncIterator[None]:
    store = parts.pipeline.store
    await store.open()  # a store that cannot open closes what it opened
    try:
        yield
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def workers(parts: Parts, serving: bool) -> AsyncIterator[None]:
    if not serving or parts.config.workers <= 0:
        yield
        return
    pool = parts.pipeline.workers
    try:
        await pool.start()
        yield
    finally:
        await pool.stop(parts.pipeline.config.stop_timeout)  # a job finishing now still writes its event


@contextlib.asynccontextmanager
async def outbox(parts: Parts, serving: bool) -> AsyncIterator[None]:
    if not serving or parts.outbox is None:
        yield  # a one-shot command's events stay in the state store for the server to send
        return
    await parts.outbox.start()  # rows left by an earlier run (or another instance) go out now
    try:
        yield
    finally:
        await parts.outbox.stop(grace=parts.config.shutdown_timeout)


@contextlib.asynccontextmanager
async def reconciler(parts: Parts, serving: bool) -> AsyncIterator[None]:
    retries = parts.service.reconciler
    tasks = [asyncio.create_task(retries.run(), name="reconciler")] if serving else []
    try:
        yield
    finally:
        await _cancel(tasks)
        await retries.drain(within=min(5.0, parts.config.shutdown_timeout))


@contextlib.asynccontextmanager
async def listener(parts: Parts, serving: bool) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await parts.pipeline_listener.drain()


@contextlib.asynccontextmanager
async def background(parts: Parts, serving: bool) -> AsyncIterator[None]:
    if not serving:
        yield
        return
    config, uploads = parts.config, parts.uploads
    tasks = [asyncio.create_task(recover(uploads, parts.pipeline), name="recovery")]
    if parts.service.has_extension("expiration") and config.sweep_interval > 0:
        tasks.append(asyncio.create_task(sweep_periodically(uploads), name="expiration-sweep"))
    if config.cleanup_failed_days > 0 and config.cleanup_interval > 0:
        tasks.append(asyncio.create_task(cleanup_periodically(uploads, parts.pipeline), name="failed-cleanup"))
    try:
        yield
    finally:
        await _cancel(tasks)


#: The steps in start order (see the module docstring).
STEPS = (locks, storage, database, hooks, quotas, recordings, workers, outbox, reconciler, listener, background)


def serving_steps(parts: Parts) -> list[Step]:
    return [functools.partial(step, parts, True) for step in STEPS]


def one_shot_steps(parts: Parts) -> list[Step]:
    return [functools.partial(step, parts, False) for step in STEPS]


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, Exception):
            log.error("background task failed", task=task.get_name(), error=repr(result))
