"""``Pipeline``: the one object the server talks to about recordings after (and during) upload.

Lifecycle calls, made by the server as uploads change (see :mod:`tusd_py.pipeline.listener`)::

    await pipeline.record_created(info, owner)      # POST: a ``recorded`` recording
    await pipeline.record_progress(upload_id, off)  # bytes stored: ``uploading``
    await pipeline.record_uploaded(upload_id)       # last byte stored: ``uploaded`` + job enqueued
    await pipeline.record_terminated(upload_id)     # DELETE: the recording leaves the model

Queries and actions for the HTTP API, always scoped to the calling user (``owner``; None for
uploads made with auth off), so one user never sees another's recordings::

    await pipeline.get_recording(upload_id, owner) -> Recording  # raises RecordingNotFound
    await pipeline.list_recordings(owner, statuses=..., limit=..., cursor=...) -> Page
    await pipeline.list_queue(owner) -> list[Job]                # queued and running jobs
    await pipeline.queue_depth() -> QueueDepth                   # the same, counted (metrics)
    await pipeline.sync(owner) -> list[str]                      # retry failed / stuck
    await pipeline.storage_stats(owner) -> StorageStats
    await pipeline.failed_before(older_than_days, owner=EVERYONE) -> list[str]

``failed_before`` only lists them; the caller deletes their uploads (``tusd_py/uploads/cleanup.py``, through
the operation layer), whose termination forgets each recording. Nothing else ever deletes a
recording: a completed one stays until its upload is terminated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

import structlog

from storage_backends.base import DataStore
from tusd_py.model.upload import UploadInfo
from tusd_py.pipeline.config import PipelineConfig
from tusd_py.pipeline.models import Job, OutboxEvent, Page, QueueDepth, Recording, StorageStats
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore
from tusd_py.pipeline.states import Status
from tusd_py.pipeline.steps import DigestPublisher, StepRegistry, default_registry
from tusd_py.pipeline.store import EVERYONE, OwnerFilter, RecordingNotFound, RecordingStore
from tusd_py.pipeline.worker import OutcomeEvents, WorkerPool
from tusd_py.protocol.metadata import text_value

if TYPE_CHECKING:
    from tusd_py.database.connection import Database

log = structlog.get_logger(__name__)

#: (hook type, upload) -> the outbox rows reporting it; empty when no webhook wants it.
EventSource = Callable[[str, UploadInfo], list[OutboxEvent]]

MODE_KEY = "mode"
FILENAME_KEY = "filename"
_MAX_LABEL = 200  # metadata is client-chosen; keep what we store and echo back bounded


def metadata_text(info: UploadInfo, key: str) -> str | None:
    text = text_value(info.metadata, key)
    return (text.strip()[:_MAX_LABEL] or None) if text else None


def default_store(
    config: PipelineConfig, clock: Callable[[], float] = time.time, database: Database | None = None
) -> RecordingStore:
    """PostgreSQL when the config names a database (on ``database``'s pool if given, e.g. shared
    with the quota ledger), else the SQLite file."""
    if database is None and config.database_url:
        from tusd_py.database.connection import Database  # asyncpg only when it is used

        database = Database(config.database_url)
    if database is None:
        lease = config.lease_seconds if config.shared else None
        return SQLiteRecordingStore(config.db_path, clock=clock, lease_seconds=lease)
    from tusd_py.pipeline.postgres_store import PostgresRecordingStore

    return PostgresRecordingStore(database, lease_seconds=config.lease_seconds, clock=clock)


class Pipeline:
    def __init__(
        self,
        config: PipelineConfig,
        data_store: DataStore,
        *,
        store: RecordingStore | None = None,
        steps: StepRegistry | None = None,
        publish_digest: DigestPublisher | None = None,
        outcome_events: OutcomeEvents | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store or default_store(config, clock)
        self.steps = steps if steps is not None else default_registry(config.compression, publish_digest)
        self.workers = WorkerPool(
            self.store,
            self.steps,
            data_store,
            concurrency=config.concurrency,
            retry=config.retry,
            job_timeout=config.job_timeout,
            poll_interval=config.poll_interval,
            spool_dir=config.spool_dir,
            outcome_events=outcome_events,
            clock=clock,
        )
        # The hook outbox (tusd_py.server.wiring.build_outbox): rows for a lifecycle change, written by
        # PipelineListener with it; on_events wakes the deliverer after a transaction wrote some.
        self.events: EventSource | None = None
        self.on_events: Callable[[], None] = lambda: None

    async def start(self, *, workers: bool = True) -> None:
        """Open the store and (unless ``workers`` is False, e.g. for a CLI) start processing."""
        await self.store.open()
        if workers:
            await self.workers.start()

    async def stop(self) -> None:
        await self.workers.stop(self.config.stop_timeout)
        await self.store.close()

    # -- lifecycle -------------------------------------------------------------------------------

    async def record_created(
        self, info: UploadInfo, owner: str | None = None, events: Sequence[OutboxEvent] = ()
    ) -> Recording:
        """A new upload: a ``recorded`` recording (idempotent). ``owner`` defaults to ``info.owner``.

        ``events`` (hook outbox rows) are written in the same transaction, here and below."""
        now = self.clock()
        recording = Recording(
            id=info.id,
            owner=owner if owner is not None else info.owner,
            status=Status.RECORDED,
            mode=metadata_text(info, MODE_KEY),
            filename=metadata_text(info, FILENAME_KEY),
            length=info.length,
            offset=0,
            created_at=now,
            updated_at=now,
        )
        created = await self.store.create_recording(recording, events)
        self._wrote(events)
        return created

    async def record_progress(
        self, upload_id: str, offset: int, events: Sequence[OutboxEvent] = ()
    ) -> Recording | None:
        """Bytes were stored up to ``offset``. None if the upload is not a known recording."""
        try:
            return await self.store.report_progress(upload_id, offset, events)
        except RecordingNotFound:
            return None
        finally:
            self._wrote(events)  # written even for an unknown recording

    async def record_uploaded(
        self, upload_id: str, offset: int | None = None, events: Sequence[OutboxEvent] = ()
    ) -> Recording:
        """The last byte is stored: ``uploaded``, and the processing job is enqueued exactly once."""
        recording, enqueued = await self.store.mark_uploaded(upload_id, offset, events)
        self._wrote(events)
        if enqueued and not self.store.announces_own_enqueues:
            self.workers.notify()
        return recording

    async def record_terminated(self, upload_id: str, events: Sequence[OutboxEvent] = ()) -> bool:
        """The upload was deleted: forget the recording and its job. False if unknown."""
        deleted = await self.store.delete_recording(upload_id, events)
        self._wrote(events)
        return deleted

    def _wrote(self, events: Sequence[OutboxEvent]) -> None:
        if events:
            self.on_events()

    # -- queries and actions ---------------------------------------------------------------------

    async def get_recording(self, upload_id: str, owner: str | None) -> Recording:
        return await self.store.get_recording(upload_id, owner)

    async def list_recordings(
        self,
        owner: str | None,
        *,
        statuses: Collection[Status] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        return await self.store.list_recordings(owner, statuses=statuses, limit=limit, cursor=cursor)

    async def list_queue(self, owner: OwnerFilter = EVERYONE, limit: int = 100) -> list[Job]:
        return await self.store.list_jobs(owner, limit=limit)

    async def queue_depth(self) -> QueueDepth:
        return await self.store.queue_depth()

    async def sync(self, owner: str | None) -> list[str]:
        """Re-enqueue ``owner``'s failed recordings and jobs stuck running; return their ids."""
        ids = await self.store.retry(owner, stuck_before=self.clock() - self.config.stuck_after)
        if ids:
            log.info("recordings re-enqueued", owner=owner, upload_ids=ids)
            self.workers.notify()
        return ids

    async def storage_stats(self, owner: str | None) -> StorageStats:
        return await self.store.stats(owner)

    async def not_yet_uploaded(self, after: str = "", limit: int = 500) -> list[str]:
        """Ids of recordings whose finish the pipeline has not heard of (see the store)."""
        return await self.store.not_yet_uploaded(after, limit)

    async def failed_before(self, older_than_days: float, owner: OwnerFilter = EVERYONE) -> list[str]:
        """Ids of failed recordings last touched more than ``older_than_days`` ago. Nothing is
        forgotten here: the caller deletes each upload, and its termination forgets the recording."""
        if older_than_days < 0:
            raise ValueError("older_than_days must not be negative")
        return await self.store.failed_before(self.clock() - older_than_days * 86400, owner)
