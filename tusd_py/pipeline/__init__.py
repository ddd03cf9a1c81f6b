"""The post-finish life of an upload: recording status, durable job queue, workers, analysis.

Modules, one job each:

* ``states``: the status models of recordings and jobs (transition tables, one function each applying them);
* ``models``: the stored and returned values (Recording, Job, Page, StorageStats);
* ``store``: the interfaces ``Recordings``, ``JobQueue``, ``EventOutbox`` and ``RecordingStore`` (all three);
* ``sql_store`` / ``transactions`` / ``tables``: the one store design (every method and rule written
  once, as scripts over the ``Tables`` protocol each dialect implements); ``rows``: rows to models;
* ``sqlite_store`` / ``sqlite_tables`` / ``sqlite_outbox`` / ``sqlite_schema`` / ``sqlite_batches``:
  SQLite (one process: its thread, group commit, statements, schema);
* ``postgres_store`` / ``postgres_tables`` / ``postgres_outbox`` / ``postgres_statements``: PostgreSQL
  (shared, leases: its pool, NOTIFY, statements, one-statement hot paths);
* ``steps`` / ``spool``: the step registry, step context, and local access to upload bytes;
* ``worker``: the worker pool with retries and exponential backoff;
* ``formats`` / ``wav`` / ``ebml`` / ``analysis``: format sniffing, header reading, advice;
* ``service``: ``Pipeline``, the facade the server calls; ``listener``: lifecycle adapter;
* ``config``: ``PipelineConfig``.
"""

from tusd_py.pipeline.config import PipelineConfig
from tusd_py.pipeline.listener import PipelineListener
from tusd_py.pipeline.models import Job, JobStatus, Page, Recording, StatusTotals, StorageStats
from tusd_py.pipeline.service import Pipeline
from tusd_py.pipeline.states import Event, IllegalTransition, Status, job_transition, transition
from tusd_py.pipeline.store import (
    EVERYONE,
    EventOutbox,
    InvalidCursor,
    JobQueue,
    RecordingNotFound,
    Recordings,
    RecordingStore,
)

__all__ = [
    "EVERYONE",
    "Event",
    "EventOutbox",
    "IllegalTransition",
    "InvalidCursor",
    "Job",
    "JobQueue",
    "JobStatus",
    "Page",
    "Pipeline",
    "PipelineConfig",
    "PipelineListener",
    "Recording",
    "RecordingNotFound",
    "RecordingStore",
    "Recordings",
    "Status",
    "StatusTotals",
    "StorageStats",
    "job_transition",
    "transition",
]
