"""Deleting one recording on its owner's request: the bytes and the recording, in that order.

It is the operation layer's delete (:meth:`Uploads.delete`), as a tus DELETE is: termination must
be switched on, the owner is checked before the lock, a PATCH still streaming into the upload is
asked to let go, a pre-terminate hook may refuse, then the listeners (quotas release the bytes,
hooks send post-terminate, the pipeline forgets the recording).
"""

from __future__ import annotations

from tusd_py.model.errors import TusError
from tusd_py.model.storage_errors import UploadNotFound
from tusd_py.pipeline.service import Pipeline
from tusd_py.pipeline.store import RecordingNotFound
from tusd_py.uploads.actor import Actor
from tusd_py.uploads.operations import Uploads


async def delete_recording(uploads: Uploads, actor: Actor, pipeline: Pipeline, upload_id: str) -> None:
    """Delete ``actor``'s recording and its bytes. Raise :class:`RecordingNotFound` if it is not theirs.

    Raises :class:`tusd_py.locks.locker.UploadLocked` (423) if a request holding the upload does not let go.
    """
    await pipeline.get_recording(upload_id, actor.user_id)
    try:
        await uploads.delete(actor, upload_id)
    except TusError as exc:
        if exc.status != 404:
            raise
        try:
            await uploads.service.store.get_info(upload_id)
        except UploadNotFound:
            pass  # the bytes went meanwhile (tus DELETE, expiry sweep); the recording still goes
        else:
            raise RecordingNotFound(upload_id) from None  # the recording and its upload disagree: touch nothing
    # The pipeline's listener has just forgotten the recording, but listener failures are only
    # logged; the caller was promised that the recording is gone, so make sure of it here.
    await pipeline.record_terminated(upload_id)
