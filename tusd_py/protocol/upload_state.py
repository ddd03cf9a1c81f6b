"""An upload's own state: every rule about what an upload *is* right now lives here.

Two words, never mixed (tus 1.0.0 uses "finished" loosely; the IETF resumable-upload draft calls
an upload whose bytes are all in "complete"):

* **complete**: every declared byte is stored (the length is known and the offset reached it).
  A pure fact of ``offset`` and ``length``; an upload of unknown length is never complete.
* **finished**: the server's finish step has run (``finished_at`` is set): pre-finish hooks,
  the backend's finish (S3 CompleteMultipartUpload), quotas and post-finish processing. A
  complete upload that is not finished yet is what a crash between the last byte and the finish
  leaves behind; start-up recovery finishes it (:func:`needs_finish`).

The questions the server asks, one function each:

* :func:`awaits_partials`: a final concatenation whose partials are not all finished yet. It has
  no offset to report (tus Concatenation: "the Server MUST NOT include the Upload-Offset header")
  and is finished by assembly, never by recovery.
* :func:`refuses_bytes`: why an upload cannot take a PATCH (a final is assembled, never written).
* :func:`expires_at` / :func:`is_expired`: tus Expiration. Only unfinished, incomplete uploads
  expire, ``expire_after`` seconds after their last activity (0: never).
* :func:`publishes_digest`: HEAD and GET send Repr-Digest once the finished upload's SHA-256 is
  recorded by processing.
* :func:`counts_as_unfinished`: the per-user unfinished-uploads quota counts uploads not finished.

Nothing else compares ``offset`` with ``length`` or reads ``finished_at`` to decide these.
"""

from __future__ import annotations

from tusd_py.model.upload import UploadInfo


def is_complete(info: UploadInfo) -> bool:
    """Every declared byte is stored."""
    return info.length is not None and info.offset == info.length


def is_finished(info: UploadInfo) -> bool:
    """The finish step has run."""
    return info.finished_at is not None


def awaits_partials(info: UploadInfo) -> bool:
    """A final concatenation that is not assembled yet."""
    return info.concat == "final" and not is_finished(info)


def needs_finish(info: UploadInfo) -> bool:
    """Complete but never finished (a crash came in between); finals are finished by assembly."""
    return is_complete(info) and not is_finished(info) and info.concat != "final"


def reports_offset(info: UploadInfo) -> bool:
    return not awaits_partials(info)


def refuses_bytes(info: UploadInfo) -> str | None:
    """Why this upload takes no PATCH, or None when it may be written."""
    if info.concat == "final":
        return "a final upload is assembled from its partials and cannot be PATCHed"
    return None


def expires_at(info: UploadInfo, expire_after: float) -> float | None:
    """When the upload expires, or None if it never does (finished, complete, or expiry off)."""
    if expire_after <= 0 or is_finished(info) or is_complete(info):
        return None
    return info.updated_at + expire_after


def is_expired(info: UploadInfo, expire_after: float, now: float) -> bool:
    deadline = expires_at(info, expire_after)
    return deadline is not None and now >= deadline


def publishes_digest(info: UploadInfo) -> bool:
    return info.sha256 is not None and is_finished(info)


def counts_as_unfinished(info: UploadInfo) -> bool:
    return not is_finished(info)


def announces_finish(info: UploadInfo) -> bool:
    """Whether a finished upload is handed to post-finish processing: not a partial (its final is),
    not one a pre-finish hook refused."""
    return is_finished(info) and info.concat != "partial" and not info.finish_refused


def claimed_bytes(info: UploadInfo) -> int:
    """What an upload claims of its owner's quota: its declared length, else what has arrived.

    The length, not only the bytes: otherwise a client could open many large uploads at once and
    overrun the limit later."""
    return info.length if info.length is not None else info.offset
