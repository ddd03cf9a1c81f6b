"""Deleting failed recordings after a grace period: the pipeline forgets them, this frees their bytes.

Recordings are never deleted after processing unless asked (the old backend's non-destructive
promise): only *failed* ones older than the configured number of days go, so a client has a week
to notice and retry before the bytes are reclaimed.
"""

from __future__ import annotations

import structlog

from tusd_py.locking import UploadLocked
from tusd_py.pipeline.service import Pipeline
from tusd_py.pipeline.store import EVERYONE, OwnerFilter
from tusd_py.service import TusService

log = structlog.get_logger(__name__)


async def cleanup_failed(
    service: TusService, pipeline: Pipeline, days: float, owner: OwnerFilter = EVERYONE
) -> list[str]:
    removed = []
    for upload_id in await pipeline.cleanup_failed(days, owner=owner):
        try:
            deleted = await service.delete_upload(upload_id, wait=False, ask_hooks=False)
        except UploadLocked:
            log.warning("failed recording is being written; its bytes stay until the next cleanup", upload_id=upload_id)
            continue
        if deleted is not None:
            removed.append(upload_id)
    if removed:
        log.info("cleaned up failed recordings", count=len(removed), older_than_days=days)
    return removed
