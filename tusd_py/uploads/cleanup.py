"""Deleting failed recordings after a grace period: their bytes first, then the recordings.

Recordings are never deleted after processing unless asked (the old backend's non-destructive
promise): only *failed* ones older than the configured number of days go, so a client has a week
to notice and retry before the bytes are reclaimed.

Each goes through the operation layer's delete, whose listeners then forget the recording: the
bytes and the recording leave together. An upload someone is writing right now is skipped, and
since its recording is still there (still ``failed``), the next round finds it again. A recording
whose bytes are already gone is forgotten at once.
"""

from __future__ import annotations

import structlog

from tusd_py.locks.locker import UploadLocked
from tusd_py.model.errors import TusError
from tusd_py.pipeline.service import Pipeline
from tusd_py.pipeline.store import EVERYONE, OwnerFilter
from tusd_py.protocol.switches import Op
from tusd_py.uploads.actor import Actor, Role
from tusd_py.uploads.operations import Uploads

log = structlog.get_logger(__name__)


async def cleanup_failed(uploads: Uploads, actor: Actor, pipeline: Pipeline, days: float) -> list[str]:
    """Delete ``actor``'s failed recordings older than ``days`` (every owner's for the server's policy)."""
    uploads.require(actor, Op.DELETE)  # step 1 up front: switched off refuses even when nothing qualifies
    removed = []
    owner: OwnerFilter = EVERYONE if actor.role is Role.SERVER else actor.user_id
    for upload_id in await pipeline.failed_before(days, owner=owner):
        try:
            await uploads.delete(actor, upload_id)
        except UploadLocked:
            log.info("failed recording is being written; it stays until the next cleanup", upload_id=upload_id)
            continue
        except TusError as exc:
            if exc.status != 404:
                raise
        # Deleted, or its bytes were already gone: either way the recording goes now.
        await pipeline.record_terminated(upload_id)
        removed.append(upload_id)
    if removed:
        log.info("cleaned up failed recordings", count=len(removed), older_than_days=days)
    return removed
