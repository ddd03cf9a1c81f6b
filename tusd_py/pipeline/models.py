"""Values the pipeline stores and returns: recordings, jobs, pages, statistics.

All are msgspec Structs so the HTTP layer can encode them with ``msgspec.json.encode`` as they are.
Timestamps are Unix seconds (float), like :class:`tusd_py.model.upload.UploadInfo`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tusd_py.pipeline.states import JobStatus, Status

__all__ = [
    "Claim", "Job", "JobStatus", "OutboxEvent", "Page", "QueueDepth", "Recording", "StatusTotals", "StorageStats",
]  # fmt: skip


class Recording(msgspec.Struct, kw_only=True):
    """One upload seen as a recording.

    ``offset`` is the last reported durable offset, ``length`` the declared length (None while
    deferred). ``attempts`` counts every processing attempt ever made, across retries; the job's own
    counter restarts with each retry round so each round gets its full backoff schedule.
    ``results`` maps step name to what that step returned in the attempt that succeeded.
    """

    id: str
    owner: str | None
    status: Status
    mode: str | None = None
    filename: str | None = None
    length: int | None = None
    offset: int = 0
    created_at: float
    updated_at: float
    uploaded_at: float | None = None
    completed_at: float | None = None
    attempts: int = 0
    last_error: str | None = None
    job_id: str | None = None
    results: dict[str, Any] = msgspec.field(default_factory=dict)


class Job(msgspec.Struct, kw_only=True):
    """The processing job of one upload (at most one per upload, enforced by the store)."""

    id: str
    upload_id: str
    owner: str | None
    status: JobStatus
    attempts: int  # in the current round
    not_before: float
    created_at: float
    updated_at: float
    claimed_at: float | None = None
    # Bumped by each claim; a worker's report is accepted only with the token of its own claim,
    # so a worker whose job was requeued under it (hung, then recovered) cannot overwrite the rerun.
    claim_token: int = 0
    last_error: str | None = None


class QueueDepth(msgspec.Struct, kw_only=True):
    """The queue counted, not read: jobs per live status and when the oldest queued one was created."""

    by_status: dict[str, int]  # queued and running, each present (0 when none)
    oldest_queued_at: float | None = None


class Claim(msgspec.Struct, kw_only=True):
    """A job a worker now owns, with the recording as it was at claim time."""

    job: Job
    recording: Recording


class Page(msgspec.Struct, kw_only=True):
    """A page of recordings, newest first; pass ``next_cursor`` back for the next page (None: last)."""

    items: list[Recording]
    next_cursor: str | None = None


class StatusTotals(msgspec.Struct, kw_only=True):
    count: int = 0
    bytes: int = 0


class StorageStats(msgspec.Struct, kw_only=True):
    """Per-user usage. ``bytes`` counts stored bytes (offsets), not declared lengths."""

    owner: str | None
    by_status: dict[Status, StatusTotals]
    total_count: int = 0
    total_bytes: int = 0


class OutboxEvent(msgspec.Struct, kw_only=True):
    """One hook event waiting for delivery to one webhook target (the outbox of durable webhooks).

    Written in the same transaction as the change it reports; deleted once the target took it.
    ``event_id`` is the event's own id (the same for every target and every attempt: receivers
    de-duplicate on it); ``body`` is the exact JSON sent, encoded once.
    """

    event_id: str
    target: str  # the webhook's URL without credentials (tusd_py.hooks.webhook.safe_url)
    hook: str  # the hook type, e.g. "post-finish"
    upload_id: str | None
    body: bytes
    created_at: float
    not_before: float  # not delivered before this time (backoff)
    attempts: int = 0
    last_error: str | None = None
