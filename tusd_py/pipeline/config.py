"""Settings of the processing pipeline, one msgspec Struct the server's Config can embed."""

from __future__ import annotations

import msgspec

from tusd_py.pipeline.analysis import CompressionPolicy
from tusd_py.pipeline.worker import RetryPolicy


class PipelineConfig(msgspec.Struct, kw_only=True):
    #: SQLite database file for recordings and jobs (created with its directory if missing).
    db_path: str = "./data/pipeline.sqlite3"
    #: PostgreSQL instead (``postgresql://...``): the store shared by several processes, with leases.
    database_url: str | None = None
    #: Seconds a claimed job stays this instance's without renewal (PostgreSQL, or a shared SQLite file).
    lease_seconds: float = 60.0
    #: The SQLite file is shared by the worker processes of ``--processes N``: jobs claimed with leases.
    shared: bool = False
    concurrency: int = 2
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    #: A job running longer than this is cut and counts as a failed attempt (seconds).
    job_timeout: float = 900.0
    #: Idle workers look for due jobs at least this often (seconds), besides being woken on enqueue.
    poll_interval: float = 5.0
    #: Grace for running jobs on shutdown before they are cancelled and left for the next start.
    stop_timeout: float = 30.0
    #: ``sync`` requeues a job that has been running longer than this (seconds): its worker hung.
    stuck_after: float = 3600.0
    #: Where uploads from non-local backends are spooled for analysis (None: the system temp dir).
    spool_dir: str | None = None
    compression: CompressionPolicy = msgspec.field(default_factory=CompressionPolicy)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("pipeline concurrency must be at least 1")
        if min(self.job_timeout, self.poll_interval, self.stuck_after, self.lease_seconds) <= 0:
            raise ValueError("pipeline timeouts must be positive")
