"""Rows of either store (sqlite3.Row, asyncpg.Record) to the pipeline's models: one mapping, two engines."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from tusd_py.pipeline.models import Job, JobStatus, OutboxEvent, Recording
from tusd_py.pipeline.states import Status


class Row(Protocol):
    """What both drivers' rows offer: columns by name."""

    def __getitem__(self, key: str, /) -> Any: ...


def recording_from(row: Row) -> Recording:
    return Recording(
        id=row["id"],
        owner=row["owner"],
        status=Status(row["status"]),
        mode=row["mode"],
        filename=row["filename"],
        length=row["length"],
        offset=row["offset"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        uploaded_at=row["uploaded_at"],
        completed_at=row["completed_at"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        job_id=row["job_id"],
        results=msgspec.json.decode(row["results"]),
    )


def job_from(row: Row) -> Job:
    return Job(
        id=row["id"],
        upload_id=row["upload_id"],
        owner=row["owner"],
        status=JobStatus(row["status"]),
        attempts=row["attempts"],
        not_before=row["not_before"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        claimed_at=row["claimed_at"],
        claim_token=row["claim_token"],
        last_error=row["last_error"],
    )


#: The hook_outbox columns, in the order of :func:`outbox_params`.
OUTBOX_COLUMNS = "event_id, target, hook, upload_id, body, created_at, not_before, attempts, last_error"


def outbox_params(e: OutboxEvent) -> tuple[Any, ...]:
    return (e.event_id, e.target, e.hook, e.upload_id, e.body, e.created_at, e.not_before, e.attempts, e.last_error)


def outbox_event_from(row: Row) -> OutboxEvent:
    return OutboxEvent(
        event_id=row["event_id"],
        target=row["target"],
        hook=row["hook"],
        upload_id=row["upload_id"],
        body=bytes(row["body"]),
        created_at=row["created_at"],
        not_before=row["not_before"],
        attempts=row["attempts"],
        last_error=row["last_error"],
    )
