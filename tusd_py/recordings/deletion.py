"""Deleting one recording on its owner's request: the bytes and the recording, in that order.

It goes the way of a tus DELETE, :meth:`TusService.delete_upload`: the upload's lock (a PATCH
still streaming into it is asked to let go), the backend's terminate, then the lifecycle listeners
(quotas release the bytes, hooks send post-terminate, the pipeline forgets the recording).
"""

from __future__ import annotations

from storage_backends.base import UploadInfo
from tusd_py.pipeline.service import Pipeline
from tusd_py.pipeline.store import RecordingNotFound
from tusd_py.service import TusService


async def delete_recording(service: TusService, pipeline: Pipeline, upload_id: str, owner: str | None) -> None:
    """Delete ``owner``'s recording and its bytes. Raise :class:`RecordingNotFound` if it is not theirs.

    Raises :class:`tusd_py.locking.UploadLocked` (423) if a request holding the upload does not let go.
    """
    await pipeline.get_recording(upload_id, owner)

    def owned(info: UploadInfo) -> bool:
        if info.owner != owner:
            raise RecordingNotFound(upload_id)  # the recording and its upload disagree: touch nothing
        return True

    # None back means the bytes went meanwhile (tus DELETE, expiry sweep); the recording still goes.
    await service.delete_upload(upload_id, check=owned)
    # The pipeline's listener has just forgotten the recording, but listener failures are only
    # logged; the caller was promised that the recording is gone, so make sure of it here.
    await pipeline.record_terminated(upload_id)
