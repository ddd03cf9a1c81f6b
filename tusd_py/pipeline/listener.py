"""Adapter from the server's upload lifecycle (:class:`tusd_py.model.lifecycle.UploadListener`) to the pipeline.

Register it with ``service.lifecycle.add(PipelineListener(pipeline))``. ``on_progress`` is
synchronous and called for every chunk, so it only schedules a store update, at most one per
upload per ``progress_interval`` seconds besides the first (the one that changes the status).
A late progress task that lands after ``on_finished`` is harmless: the store ignores progress
once the upload is complete.

With ``events`` (the hook outbox, :class:`tusd_py.hooks.outbox.HookOutbox`), each change is stored
together with the post-* webhook events reporting it, in one transaction: post-create with the new
recording, post-receive with progress, post-finish with ``uploaded``, post-terminate with the
deletion. A progress event the pipeline's own throttle would skip is still written (alone).

Creation, finish and termination go through the :class:`~tusd_py.database.reconcile.Reconciler`: if the
state store is unreachable (PostgreSQL down), the write is retried until it lands, so a finished
upload is recorded and processed once the database is back, without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING

import msgspec
import structlog

from tusd_py.database.reconcile import Reconciler
from tusd_py.model.errors import StateStoreUnavailable
from tusd_py.model.upload import UploadInfo
from tusd_py.pipeline.models import OutboxEvent
from tusd_py.pipeline.service import EventSource, Pipeline
from tusd_py.pipeline.store import RecordingNotFound
from tusd_py.protocol import upload_state

if TYPE_CHECKING:
    from tusd_py.model.lifecycle import UploadListener

log = structlog.get_logger(__name__)


def _no_events(hook: str, info: UploadInfo) -> list[OutboxEvent]:
    return []


class PipelineListener:
    def __init__(
        self,
        pipeline: Pipeline,
        *,
        progress_interval: float = 1.0,
        events: EventSource | None = None,
        reconciler: Reconciler | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.events = events or pipeline.events or _no_events
        self.reconciler = reconciler or Reconciler()
        self.progress_interval = progress_interval
        self._last_report: dict[str, float] = {}
        self._tasks: set[asyncio.Task[object]] = set()

    async def on_created(self, info: UploadInfo) -> None:
        # Awaited, not scheduled: measured, a background insert races on_finished, which then has
        # to adopt the upload, and the extra transactions on the single SQLite thread cost more
        # than the wait they save (bench/ small: 531 -> 296 uploads/s).
        events = self.events("post-create", info)  # made once: a retry writes the same event ids
        await self.reconciler.attempt(
            f"recording.created:{info.id}", lambda: self.pipeline.record_created(info, events=events)
        )

    def on_progress(self, info: UploadInfo) -> None:
        events = self.events("post-receive", info)
        if upload_state.is_complete(info):
            # on_finished follows and records "uploaded": one store write instead of two, unless
            # the final progress event has to be written.
            if events:
                self._schedule(self.pipeline.record_progress(info.id, info.offset, events))
            return
        now = time.monotonic()
        last = self._last_report.get(info.id)
        if not events and last is not None and now - last < self.progress_interval:
            return
        self._last_report[info.id] = now
        self._schedule(self.pipeline.record_progress(info.id, info.offset, events))

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
        events = self.events("post-finish", info)
        finished = msgspec.structs.replace(info)  # a retry later must see the upload as it is now
        await self.reconciler.attempt(f"recording.finished:{info.id}", lambda: self._record_uploaded(finished, events))

    async def _record_uploaded(self, info: UploadInfo, events: Sequence[OutboxEvent]) -> None:
        try:
            await self.pipeline.record_uploaded(info.id, info.offset, events)
        except RecordingNotFound:
            # Created before the pipeline was enabled, or its creation event was lost: adopt it.
            # (The failed transaction wrote no events; they go with the second one.)
            await self.pipeline.record_created(info)
            await self.pipeline.record_uploaded(info.id, info.offset, events)

    async def on_terminated(self, info: UploadInfo) -> None:
        self._last_report.pop(info.id, None)
        upload_id, events = info.id, self.events("post-terminate", info)
        await self.reconciler.attempt(
            f"recording.terminated:{upload_id}", lambda: self.pipeline.record_terminated(upload_id, events)
        )

    async def drain(self) -> None:
        """Wait for scheduled progress reports (shutdown, tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


if TYPE_CHECKING:

    def _conforms(listener: PipelineListener) -> UploadListener:
        return listener  # mypy holds PipelineListener to the lifecycle's listener protocol
