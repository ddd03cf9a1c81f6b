"""The serving process's background work: recovery after a crash, the expiry sweep and the cleanup
of failed recordings, each round once across processes and instances (``SWEEP_LOCK``,
``CLEANUP_LOCK``). ``tusd_py/server/runtime.py`` starts these as tasks and cancels them at stop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from tusd_py.locks.locker import CLEANUP_LOCK, SWEEP_LOCK, LockUnavailable, UploadLocked
from tusd_py.pipeline.service import Pipeline
from tusd_py.uploads.actor import SERVER
from tusd_py.uploads.cleanup import cleanup_failed
from tusd_py.uploads.operations import Uploads

if TYPE_CHECKING:
    from extensions.expiration import SweepReport

log = structlog.get_logger(__name__)


async def recover(uploads: Uploads, pipeline: Pipeline) -> None:
    """Finish what a crash left unfinished, and record finishes the pipeline never heard of."""
    try:
        count = await uploads.recover()
        recorded = await uploads.record_lost_finishes(pipeline)
    except Exception:
        log.exception("recovery of unfinished uploads failed")
        return
    if count:
        log.info("finished uploads left unfinished by a crash", count=count)
    if recorded:
        log.info("finishes recorded that a crash lost before the pipeline saw them", count=recorded)


async def sweep_once_shared(uploads: Uploads) -> SweepReport | None:
    """One expiration sweep, unless another process or instance on the shared locker runs one (None)."""
    from extensions.expiration import sweep

    try:
        async with uploads.service.locker.try_lock(SWEEP_LOCK):
            return await sweep(uploads)
    except UploadLocked:
        log.debug("expiration sweep skipped: another process is sweeping")
        return None


async def sweep_periodically(uploads: Uploads) -> None:
    while True:
        await asyncio.sleep(uploads.service.config.sweep_interval)
        try:
            report = await sweep_once_shared(uploads)
        except LockUnavailable as exc:  # Redis is away: the next sweep does it
            log.warning("expiration sweep postponed", reason=exc.reason)
            continue
        except Exception:
            log.exception("expiration sweep failed")
            continue
        if report is not None and (report.expired or report.orphans):
            log.info("expiration sweep", expired=report.expired, busy=report.skipped_busy, orphans=report.orphans)


async def cleanup_periodically(uploads: Uploads, pipeline: Pipeline) -> None:
    service = uploads.service
    while True:
        await asyncio.sleep(service.config.cleanup_interval)
        try:
            async with service.locker.try_lock(CLEANUP_LOCK):  # one process or instance per round
                await cleanup_failed(uploads, SERVER, pipeline, service.config.cleanup_failed_days)
        except UploadLocked:
            log.debug("cleanup of failed recordings skipped: another process is running it")
        except LockUnavailable as exc:  # Redis is away: the next run does it
            log.warning("cleanup of failed recordings postponed", reason=exc.reason)
        except Exception:
            log.exception("cleanup of failed recordings failed")
