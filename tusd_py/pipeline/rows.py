"""Rows of either store (sqlite3.Row, asyncpg.Record) to the pipeline's models: one mapping, two engines."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from tusd_py.pipeline.models import Job, JobStatus, Recording
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
