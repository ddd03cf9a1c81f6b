"""Adapter from the server's upload lifecycle (:class:`tusd_py.lifecycle.UploadListener`) to the pipeline.

Register it with ``service.lifecycle.add(PipelineListener(pipeline))``. ``on_progress`` is
synchronous and called for every chunk, so it only schedules a store update, at most one per
upload per ``progress_interval`` seconds besides the first (the one that changes the status).
A late progress task that lands after ``on_finished`` is harmless: the store ignores progress
once the upload is complete.

Creation, finish and termination go through the :class:`~tusd_py.reconcile.Reconciler`: if the
state store is unreachable (PostgreSQL down), the write is retried until it lands, so a finished
upload is recorded and processed once the database is back, without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING

import msgspec
import structlog

from storage_backends.base import UploadInfo
from tusd_py.errors import StateStoreUnavailable
from tusd_py.pipeline.service import Pipeline
from tusd_py.pipeline.store import RecordingNotFound
from tusd_py.protocol import upload_state
from tusd_py.reconcile import Reconciler

if TYPE_CHECKING:
    from tusd_py.lifecycle import UploadListener

log = structlog.get_logger(__name__)


class PipelineListener:
    def __init__(
        self, pipeline: Pipeline, *, progress_interval: float = 1.0, reconciler: Reconciler | None = None
    ) -> None:
        self.pipeline = pipeline
        self.reconciler = reconciler or Reconciler()
        self.progress_interval = progress_interval
        self._last_report: dict[str, float] = {}
        self._tasks: set[asyncio.Task[object]] = set()

    async def on_created(self, info: UploadInfo) -> None:
        # Awaited, not scheduled: measured, a background insert races on_finished, which then has
        # to adopt the upload, and the extra transactions on the single SQLite thread cost more
        # than the wait they save (bench/ small: 531 -> 296 uploads/s).
        await self.reconciler.attempt(f"recording.created:{info.id}", lambda: self.pipeline.record_created(info))

    def on_progress(self, info: UploadInfo) -> None:
        if upload_state.is_complete(info):
            return  # on_finished follows and records "uploaded": one store write instead of two
        now = time.monotonic()
        last = self._last_report.get(info.id)
        if last is not None and now - last < self.progress_interval:
            return
        self._last_report[info.id] = now
        self._schedule(self.pipeline.record_progress(info.id, info.offset))

    def _schedule(self, work: Coroutine[object, object, object]) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # keep a reference until done, or the task may be collected mid-flight
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        if isinstance(task.exception(), StateStoreUnavailable):  # the finish report is retried; progress may lapse
            log.info("progress report skipped: state store unreachable")
        else:
            log.error("progress report failed", error=repr(task.exception()))

    async def on_finished(self, info: UploadInfo) -> None:
        self._last_report.pop(info.id, None)
        finished = msgspec.structs.replace(info)  # a retry later must see the upload as it is now
        await self.reconciler.attempt(f"recording.finished:{info.id}", lambda: self._record_uploaded(finished))

    async def _record_uploaded(self, info: UploadInfo) -> None:
        try:
            await self.pipeline.record_uploaded(info.id, info.offset)
        except RecordingNotFound:
            # Created before the pipeline was enabled, or its creation event was lost: adopt it.
            await self.pipeline.record_created(info)
            await self.pipeline.record_uploaded(info.id, info.offset)

    async def on_terminated(self, info: UploadInfo) -> None:
        self._last_report.pop(info.id, None)
        upload_id = info.id
        await self.reconciler.attempt(
            f"recording.terminated:{upload_id}", lambda: self.pipeline.record_terminated(upload_id)
        )

    async def drain(self) -> None:
        """Wait for scheduled progress reports (shutdown, tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


if TYPE_CHECKING:

    def _conforms(listener: PipelineListener) -> UploadListener:
        return listener  # mypy holds PipelineListener to the lifecycle's listener protocol
