"""Removing S3 debris that no upload refers to (run by the expiration sweeper).

Debris comes from crashes between S3 calls, which the commit-point design makes harmless but
not free: multipart uploads created but never recorded (or whose info object was deleted),
tail segments a later info PUT superseded, and objects of terminated uploads.

A key is only removed when no write can be about to use it: multipart uploads and objects are
judged against the info object read *after* listing them, and a tail segment of a live upload
only if it starts below the durable offset (new segments are always written at or above it).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import structlog

from storage_backends.s3_ledger import S3State, durable_offset, segment_starts
from storage_backends.s3_objects import INFO_SUFFIX, SEGMENT_INFIX
from tusd_py.model.storage_errors import StorageError, UploadNotFound
from tusd_py.model.upload import UPLOAD_ID

if TYPE_CHECKING:
    from storage_backends.s3 import S3Store

log = structlog.get_logger(__name__)

_MISSING = "missing"


async def _state(store: S3Store, upload_id: str) -> S3State | str | None:
    """The upload's state; ``_MISSING`` if it has no info object; None if unreadable (keep all)."""
    try:
        _, state = await store.load(upload_id)
    except UploadNotFound:
        return _MISSING
    except StorageError as exc:
        if type(exc) is not StorageError:
            raise  # StorageUnavailable: stop the sweep, try again next time
        return None
    return state


async def abort_abandoned(store: S3Store, older_than: float) -> int:
    """Abort multipart uploads started before ``older_than`` that no info object records."""
    prefix = store.config.prefix
    aborted = 0
    states: dict[str, S3State | str | None] = {}
    async for key, multipart_id, initiated in store.objects.list_multipart(prefix):
        upload_id = key[len(prefix) :]
        if initiated >= older_than or not UPLOAD_ID.fullmatch(upload_id):
            continue
        if upload_id not in states:
            states[upload_id] = await _state(store, upload_id)
        state = states[upload_id]
        if state is None or (isinstance(state, S3State) and state.multipart_id == multipart_id):
            continue
        await store.objects.abort_multipart(key, multipart_id)
        aborted += 1
        log.info("s3 aborted an abandoned multipart upload", key=key)
    return aborted


async def sweep_orphans(store: S3Store, older_than: float) -> int:
    removed = await abort_abandoned(store, older_than)
    prefix = store.config.prefix
    with_info: set[str] = set()
    data: list[tuple[str, str]] = []
    segments: dict[str, list[tuple[str, int]]] = defaultdict(list)
    async for key, modified in store.objects.list_keys(prefix):
        name = key[len(prefix) :]
        if name.endswith(INFO_SUFFIX):
            with_info.add(name[: -len(INFO_SUFFIX)])
        elif modified >= older_than:
            continue
        elif SEGMENT_INFIX in name:
            upload_id, _, start = name.partition(SEGMENT_INFIX)
            if UPLOAD_ID.fullmatch(upload_id) and start.isdigit():
                segments[upload_id].append((key, int(start)))
        elif UPLOAD_ID.fullmatch(name):
            data.append((name, key))
    stray = [key for upload_id, key in data if upload_id not in with_info]
    for upload_id, keys in segments.items():
        state = await _state(store, upload_id)
        if state == _MISSING:
            stray.extend(key for key, _ in keys)
        elif isinstance(state, S3State):
            referenced = set(segment_starts(state))
            limit = durable_offset(state)
            stray.extend(key for key, start in keys if state.completed or (start < limit and start not in referenced))
    if stray:
        await store.objects.delete_keys(stray)
        log.info("s3 removed stray objects", count=len(stray))
    return removed + len(stray)
