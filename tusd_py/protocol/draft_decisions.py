"""Which status a resumable-upload draft request gets: creation and append as pure functions.

Like ``decisions.py`` for tus, these take plain values (parsed fields, the stored state, config)
and return a plan or raise a :class:`~tusd_py.model.errors.TusError`. Draft errors carry an RFC 9457
problem document (draft -11, "Problem Types"): the three types the draft registers where they
apply, ``about:blank`` with the reason as ``detail`` otherwise (RFC 9457 section 4.2.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

from tusd_py.model.errors import TusError
from tusd_py.protocol.headers import MAX_REPRESENTABLE

PROBLEM_TYPES = "https://iana.org/assignments/http-problem-types#"
MISMATCHING_OFFSET = PROBLEM_TYPES + "mismatching-upload-offset"
COMPLETED_UPLOAD = PROBLEM_TYPES + "completed-upload"
INCONSISTENT_LENGTH = PROBLEM_TYPES + "inconsistent-upload-length"


def problem(
    status: int,
    reason: str,
    *,
    type_uri: str = "about:blank",
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **members: object,
) -> TusError:
    """A TusError answered as a problem document; ``detail`` is the plain reason tus would send."""
    document: dict[str, object] = {"type": type_uri, "title": title or status_title(status), "status": status}
    document["detail"] = reason
    document.update({key.replace("_", "-"): value for key, value in members.items()})
    return TusError(status, reason, headers, problem=document)


def as_problem(exc: TusError) -> TusError:
    """The same error as a problem document (errors raised by code shared with tus are plain)."""
    if exc.problem is not None:
        return exc
    converted = problem(exc.status, exc.reason, headers=exc.headers)
    converted.__cause__ = exc.__cause__
    return converted


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return {460: "Checksum Mismatch"}.get(status, "Error")


def inconsistent_length(reason: str) -> TusError:
    return problem(400, reason, type_uri=INCONSISTENT_LENGTH, title="inconsistent length values for upload")


def mismatching_offset(expected: int, provided: int) -> TusError:
    return problem(
        409,
        f"Upload-Offset {provided} does not match the upload's offset {expected}",
        type_uri=MISMATCHING_OFFSET,
        title="offset from request does not match offset of resource",
        headers={"Upload-Offset": str(expected)},
        expected_offset=expected,
        provided_offset=provided,
    )


def completed_upload() -> TusError:
    return problem(
        400, "the upload is already complete; nothing can be appended", type_uri=COMPLETED_UPLOAD,
        title="upload is already completed",
    )  # fmt: skip


def too_large(reason: str) -> TusError:
    return problem(413, reason)


def error_says_complete(*, status: int, protocol_error: bool, finished: bool, complete_means_processed: bool) -> bool:
    """What the completeness field of an error answering a creation or an append says.

    -06 on, a response carries it; up to -11 it is the upload's state (a pre-finish rejection
    comes after completion: true). -12 ("Redefine Upload-Complete on the server side") makes it
    say whether the response comes from processing the completed representation, so with
    ``complete_means_processed`` the draft's own protocol errors say false even on a completed
    upload. And -12's "409 (Conflict) ... and the Upload-Complete header field set to false" for
    a wrong offset holds for every version (a pre-finish hook may answer 409 too: that one came
    from processing)."""
    if protocol_error and (status == 409 or complete_means_processed):
        return False
    return finished


def check_append_size(
    *, content_length: int | None, complete: bool, max_append_size: int | None, min_append_size: int | None
) -> None:
    """``max-append-size`` / ``min-append-size`` ("Limits"): the latter "does not apply to upload
    creation requests with no content, or to requests completing the upload". A body without
    Content-Length is held to the maximum while it streams (``capped``), and to no minimum."""
    if content_length is None:
        return
    if max_append_size is not None and content_length > max_append_size:
        raise too_large(f"request content of {content_length} bytes is above max-append-size {max_append_size}")
    if min_append_size is not None and 0 < content_length < min_append_size and not complete:
        raise problem(400, f"request content of {content_length} bytes is below min-append-size {min_append_size}")


def capped(limit: int, max_append_size: int | None) -> int:
    return limit if max_append_size is None else min(limit, max_append_size)


@dataclass(frozen=True, slots=True)
class DraftCreationPlan:
    length: int | None  # None: not known yet (declared by a later request, or by the completing one)
    complete: bool  # the request's content ends the upload
    body_bytes: int | None  # Content-Length, when sent


def decide_creation(
    *,
    complete: bool | None,
    complete_field: str,
    upload_offset: int | None,
    offset_given: bool,
    upload_length: int | None,
    content_length: int | None,
    max_size: int | None,
    max_append_size: int | None = None,
    min_append_size: int | None = None,
) -> DraftCreationPlan:
    """ "Upload Creation" and "Length": the length is ``Upload-Length``, or the Content-Length of a
    request that completes the upload; when both are given they must match."""
    if complete is None:
        raise problem(400, f"missing or malformed {complete_field} header (a structured Boolean, ?0 or ?1)")
    if offset_given and upload_offset != 0:
        raise problem(400, "an upload creation request may only carry Upload-Offset: 0")
    length = upload_length
    if complete and content_length is not None:
        if length is not None and length != content_length:
            raise inconsistent_length(
                f"Upload-Length {length} differs from the Content-Length {content_length} of a completing request"
            )
        length = content_length
    if length is not None and content_length is not None and content_length > length:
        raise inconsistent_length(f"request content of {content_length} bytes exceeds Upload-Length {length}")
    if length is not None and max_size is not None and length > max_size:
        raise too_large(f"the upload's length {length} exceeds the largest upload allowed, {max_size} bytes")
    if length is None and content_length is not None and max_size is not None and content_length > max_size:
        raise too_large(f"request content of {content_length} bytes exceeds the largest upload allowed, {max_size}")
    check_append_size(
        content_length=content_length, complete=complete, max_append_size=max_append_size,
        min_append_size=min_append_size,
    )  # fmt: skip
    return DraftCreationPlan(length=length, complete=complete, body_bytes=content_length)


@dataclass(frozen=True, slots=True)
class DraftAppendPlan:
    new_length: int | None  # a length this request declares (the stored one was unknown)
    max_bytes: int  # how many content bytes may be appended
    complete: bool
    body_bytes: int | None
    replay: bool = False  # the upload is complete: answer as its completing append did, append nothing


def decide_append(
    *,
    stored_offset: int,
    stored_length: int | None,
    upload_complete: bool,
    client_offset: int | None,
    complete: bool,
    upload_length: int | None,
    content_length: int | None,
    max_size: int | None,
    max_append_size: int | None = None,
    min_append_size: int | None = None,
    replay_completed: bool = False,
    final_response_known: bool = True,
) -> DraftAppendPlan:
    """ "Upload Append": a completed upload takes nothing more; the offsets must match; every length
    indication (stored, ``Upload-Length``, offset + Content-Length of a completing request) agrees.

    Up to -11 an append to a completed upload MUST be rejected (content: inconsistent length; none:
    completed-upload), before its offset is looked at. With ``replay_completed`` (-12) a wrong
    offset is a 409 whatever the upload's state, and an empty append at a completed upload's
    offset is valid: "the server can choose to replay the final response" (``replay``), which it
    does only when it knows that response was the plain success (``final_response_known``: no
    pre-finish check could have refused the upload); otherwise it refuses the append (400)."""
    if client_offset is None:
        raise problem(400, "missing or malformed Upload-Offset header (a non-negative structured Integer)")
    if upload_complete and not replay_completed:
        if content_length:  # -11: appending content to a completed upload is a length error
            raise inconsistent_length("the upload is already complete; its length cannot grow")
        raise completed_upload()
    if client_offset != stored_offset:
        raise mismatching_offset(stored_offset, client_offset)
    if upload_complete:
        if content_length or (upload_length is not None and upload_length != stored_length):
            raise inconsistent_length("the upload is already complete; its length cannot change")
        if not final_response_known:
            raise problem(400, "the upload is already complete; its final response cannot be replayed")
        return DraftAppendPlan(new_length=None, max_bytes=0, complete=True, body_bytes=content_length, replay=True)
    length = stored_length
    new_length: int | None = None
    if upload_length is not None:
        if length is not None and upload_length != length:
            raise inconsistent_length(f"Upload-Length {upload_length} differs from the length {length} set before")
        if upload_length < stored_offset:
            raise inconsistent_length(f"Upload-Length {upload_length} is below the bytes already stored")
        length = upload_length
    if complete and content_length is not None:
        implied = stored_offset + content_length
        if length is not None and implied != length:
            raise inconsistent_length(
                f"a completing request of {content_length} bytes at offset {stored_offset} ends at {implied}, "
                f"not at the upload's length {length}"
            )
        length = implied
    if length is not None and content_length is not None and stored_offset + content_length > length:
        raise inconsistent_length(
            f"request content of {content_length} bytes at offset {stored_offset} exceeds the length {length}"
        )
    if length is not None and max_size is not None and length > max_size:
        raise too_large(f"the upload's length {length} exceeds the largest upload allowed, {max_size} bytes")
    if stored_length is None and length is not None:
        new_length = length
    if length is not None:
        limit = length - stored_offset
    else:
        limit = (max_size if max_size is not None else MAX_REPRESENTABLE) - stored_offset
    if content_length is not None and content_length > limit:
        raise too_large(f"request content of {content_length} bytes at offset {stored_offset} exceeds the maximum size")
    check_append_size(
        content_length=content_length, complete=complete, max_append_size=max_append_size,
        min_append_size=min_append_size,
    )  # fmt: skip
    return DraftAppendPlan(
        new_length=new_length, max_bytes=capped(limit, max_append_size), complete=complete, body_bytes=content_length
    )
