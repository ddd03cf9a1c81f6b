"""The JSON shapes of the Recordings API, as msgspec Structs.

They wrap the pipeline's models rather than exposing them, for two reasons: the API adds what only
the server knows (the tus upload URL, the durable offset and SHA-256 from the storage backend, quota
usage), and it leaves out what is internal (job claim tokens). :mod:`tusd_py.recordings.openapi`
generates the published schemas from these same types, so the document cannot drift from what the
handlers encode.

Timestamps are RFC 3339 date-times in UTC (``2026-12-07T17:15:19.25Z``), what generated clients
parse into their date types; the pipeline keeps Unix seconds and :func:`moment` converts at the edge.
Every field is always present in a response (None is sent as ``null``), which the OpenAPI document
states by listing all as required; new fields may be added, so clients must ignore unknown ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

import msgspec
import structlog

from tusd_py.model.upload import UploadInfo
from tusd_py.pipeline.analysis import AnalysisResult
from tusd_py.pipeline.models import Job, JobStatus, Recording, StatusTotals, StorageStats
from tusd_py.pipeline.states import Status
from tusd_py.protocol import upload_state
from tusd_py.quotas.ledger import QuotaLimits, Usage

log = structlog.get_logger(__name__)

ANALYSIS_STEP = "analysis"


class RecordingSummary(msgspec.Struct, kw_only=True):
    """One recording as listed: its status and the last progress the pipeline recorded."""

    id: str
    owner: str | None
    status: Status
    mode: str | None
    filename: str | None
    #: Declared upload length in bytes (None while the client defers it).
    length: int | None
    #: Bytes stored, as last reported to the pipeline (at most one report per second while uploading).
    offset: int
    created_at: datetime
    updated_at: datetime
    uploaded_at: datetime | None
    completed_at: datetime | None
    #: Processing attempts ever made, across retries.
    attempts: int
    last_error: str | None
    job_id: str | None
    #: The tus upload URL: HEAD for the offset, PATCH to resume, GET to download when finished.
    upload_url: str


class Progress(msgspec.Struct, kw_only=True):
    """Upload progress read from the storage backend: the durable offset, as tus HEAD reports it."""

    offset: int
    length: int | None
    finished: bool


class RecordingDetail(RecordingSummary, kw_only=True):
    """One recording with everything known about it."""

    progress: Progress
    #: Hex SHA-256 of the whole upload, once processing computed it (also ``Repr-Digest`` on tus HEAD/GET).
    sha256: str | None
    #: The built-in analysis step's result, once processing completed.
    analysis: AnalysisResult | None
    #: Every processing step's result by step name (``analysis`` included), free-form JSON.
    results: dict[str, Any]


class RecordingPage(msgspec.Struct, kw_only=True):
    """A page of recordings, newest first. Pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[RecordingSummary]
    #: None on the last page.
    next_cursor: str | None


class QueuedJob(msgspec.Struct, kw_only=True):
    """A processing job waiting (``queued``, not before ``not_before``) or ``running``."""

    id: str
    upload_id: str
    status: JobStatus
    #: Attempts in the current round (a sync starts a new round).
    attempts: int
    not_before: datetime
    created_at: datetime
    updated_at: datetime
    claimed_at: datetime | None
    last_error: str | None


class Queue(msgspec.Struct, kw_only=True):
    """The caller's jobs in the processing queue, soonest first."""

    jobs: list[QueuedJob]


class SyncResult(msgspec.Struct, kw_only=True):
    """Ids of the recordings put back in the queue: failed ones, and ones whose job hung."""

    requeued: list[str]


class Quota(msgspec.Struct, kw_only=True):
    """The caller's quota (only with auth on). ``*_limit`` and ``*_left`` are None when unlimited.

    Bytes count finished uploads by size and unfinished ones by their declared length.
    """

    bytes_used: int
    bytes_limit: int | None
    bytes_left: int | None
    unfinished_used: int
    unfinished_limit: int | None
    unfinished_left: int | None


class Stats(msgspec.Struct, kw_only=True):
    """Count and stored bytes of the caller's recordings per status, and the quota."""

    by_status: dict[Status, StatusTotals]
    total_count: int
    total_bytes: int
    #: None when auth (and so quotas) is off.
    quota: Quota | None


class CleanupResult(msgspec.Struct, kw_only=True):
    """Ids of the failed recordings deleted (bytes and all)."""

    deleted: list[str]
    older_than_days: float


# -- building them ----------------------------------------------------------------------------------


@overload
def moment(seconds: float) -> datetime: ...
@overload
def moment(seconds: None) -> None: ...
def moment(seconds: float | None) -> datetime | None:
    """Unix seconds as an aware UTC datetime (msgspec writes it as RFC 3339)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def summary(recording: Recording, upload_url: str) -> RecordingSummary:
    return RecordingSummary(
        id=recording.id,
        owner=recording.owner,
        status=recording.status,
        mode=recording.mode,
        filename=recording.filename,
        length=recording.length,
        offset=recording.offset,
        created_at=moment(recording.created_at),
        updated_at=moment(recording.updated_at),
        uploaded_at=moment(recording.uploaded_at),
        completed_at=moment(recording.completed_at),
        attempts=recording.attempts,
        last_error=recording.last_error,
        job_id=recording.job_id,
        upload_url=upload_url,
    )


def detail(recording: Recording, upload_url: str, info: UploadInfo | None) -> RecordingDetail:
    """``info`` is the upload as stored now; None if its bytes are gone (then the pipeline's view stands)."""
    if info is not None:
        progress = Progress(offset=info.offset, length=info.length, finished=upload_state.is_complete(info))
    else:
        length = recording.length
        progress = Progress(offset=recording.offset, length=length, finished=recording.offset == length)
    return RecordingDetail(
        **msgspec.structs.asdict(summary(recording, upload_url)),
        progress=progress,
        sha256=info.sha256 if info is not None else None,
        analysis=_analysis(recording),
        results=recording.results,
    )


def _analysis(recording: Recording) -> AnalysisResult | None:
    raw = recording.results.get(ANALYSIS_STEP)
    if raw is None:
        return None
    try:
        return msgspec.convert(raw, AnalysisResult)
    except msgspec.ValidationError as exc:
        # Stored by an older version in another shape: still in ``results``, just not typed here.
        log.warning("stored analysis does not match the current schema", upload_id=recording.id, error=str(exc))
        return None


def queued_job(job: Job) -> QueuedJob:
    return QueuedJob(
        id=job.id,
        upload_id=job.upload_id,
        status=job.status,
        attempts=job.attempts,
        not_before=moment(job.not_before),
        created_at=moment(job.created_at),
        updated_at=moment(job.updated_at),
        claimed_at=moment(job.claimed_at),
        last_error=job.last_error,
    )


def quota(usage: Usage, limits: QuotaLimits) -> Quota:
    def left(limit: int | None, used: int) -> int | None:
        return None if limit is None else max(0, limit - used)

    return Quota(
        bytes_used=usage.bytes,
        bytes_limit=limits.max_bytes,
        bytes_left=left(limits.max_bytes, usage.bytes),
        unfinished_used=usage.unfinished,
        unfinished_limit=limits.max_unfinished,
        unfinished_left=left(limits.max_unfinished, usage.unfinished),
    )


def stats(totals: StorageStats, user_quota: Quota | None) -> Stats:
    return Stats(
        by_status=totals.by_status,
        total_count=totals.total_count,
        total_bytes=totals.total_bytes,
        quota=user_quota,
    )


class DownloadUrl(msgspec.Struct, kw_only=True):
    """A link that downloads one upload without a token, until ``expires_at``."""

    url: str
    expires_at: datetime
