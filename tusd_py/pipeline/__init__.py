"""The post-finish life of an upload: recording status, durable job queue, workers, analysis.

Modules, one job each:

* ``states``: the status model (one transition table, one function applying it);
* ``models``: the stored and returned values (Recording, Job, Page, StorageStats);
* ``store`` / ``sqlite_store`` / ``postgres_store``: the ``RecordingStore`` interface, its SQLite
  (one process) and PostgreSQL (shared, leases) implementations; ``rows``: rows to models;
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
from tusd_py.pipeline.states import Event, IllegalTransition, Status, transition
from tusd_py.pipeline.store import EVERYONE, InvalidCursor, RecordingNotFound, RecordingStore

__all__ = [
    "EVERYONE",
    "Event",
    "IllegalTransition",
    "InvalidCursor",
    "Job",
    "JobStatus",
    "Page",
    "Pipeline",
    "PipelineConfig",
    "PipelineListener",
    "Recording",
    "RecordingNotFound",
    "RecordingStore",
    "Status",
    "StatusTotals",
    "StorageStats",
    "transition",
]
