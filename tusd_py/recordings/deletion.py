"""Deleting one recording on its owner's request: the bytes and the recording, in that order.

It follows the path of a tus DELETE (:mod:`extensions.termination`) so both ways of deleting an
upload behave alike: take the upload's lock (a PATCH still streaming into it is asked to let go),
terminate it in the storage backend, then tell the lifecycle listeners
(quotas release the bytes, hooks send post-terminate, the pipeline forgets the recording).
"""

from __future__ import annotations

from storage_backends.base import CAP_TERMINATION, UploadInfo, UploadNotFound
from tusd_py.errors import TusError
from tusd_py.pipeline.service import Pipeline
from tusd_py.pipeline.store import RecordingNotFound
from tusd_py.service import TusService


async def delete_recording(service: TusService, pipeline: Pipeline, upload_id: str, owner: str | None) -> None:
    """Delete ``owner``'s recording and its bytes. Raise :class:`RecordingNotFound` if it is not theirs.

    Raises :class:`tusd_py.locking.UploadLocked` (423) if a request holding the upload does not let go.
    """
    await pipeline.get_recording(upload_id, owner)
    if CAP_TERMINATION not in service.store.capabilities:
        raise TusError(501, "this storage backend cannot delete uploads")
    info: UploadInfo | None
    async with service.locker.lock(upload_id):
        try:
            info = await service.store.get_info(upload_id)
            if info.owner != owner:
                raise RecordingNotFound(upload_id)  # the recording and its upload disagree: touch nothing
            await service.store.terminate(upload_id)
        except UploadNotFound:
            info = None  # the bytes went meanwhile (tus DELETE, expiry sweep); the recording still goes
    if info is not None:
        await service.lifecycle.terminated(info)
    # The pipeline's listener has just forgotten the recording, but listener failures are only
    # logged; the caller was promised that the recording is gone, so make sure of it here.
    await pipeline.record_terminated(upload_id)
