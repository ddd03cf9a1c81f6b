"""Which status a request gets: the tus rules for creation and PATCH as pure functions.

Handlers gather plain values (parsed headers, the stored upload state, config) and call these;
the functions either return a plan or raise :class:`~tusd_py.model.errors.TusError`. Nothing here
touches a request, a socket or a disk, so each rule is a unit test away.
"""

from __future__ import annotations

from dataclasses import dataclass

from tusd_py.model.errors import TusError, bad_request, too_large
from tusd_py.protocol.headers import MAX_REPRESENTABLE, parse_defer_length, parse_non_negative


@dataclass(frozen=True, slots=True)
class CreationPlan:
    length: int | None  # None: deferred
    body_bytes: int | None  # Content-Length of a creation-with-upload body, if any


def decide_creation(
    *,
    upload_length: str | None,
    defer_length: str | None,
    content_length: str | None,
    max_size: int | None,
    defer_supported: bool,
) -> CreationPlan:
    """tus "Creation": exactly one of Upload-Length or Upload-Defer-Length: 1 must be given."""
    deferred = parse_defer_length(defer_length)
    if deferred and not defer_supported:
        raise bad_request("Upload-Defer-Length is not supported by this server")
    length = parse_non_negative("Upload-Length", upload_length, required=False)
    if length is None and not deferred:
        raise bad_request("missing Upload-Length header (or Upload-Defer-Length: 1)")
    if length is not None and deferred:
        raise bad_request("Upload-Length and Upload-Defer-Length must not both be given")
    if length is not None and max_size is not None and length > max_size:
        raise too_large(f"Upload-Length {length} exceeds the maximum upload size of {max_size} bytes")
    body = parse_non_negative("Content-Length", content_length, required=False)
    if body and length is not None and body > length:
        raise too_large(f"request body of {body} bytes exceeds Upload-Length {length}")
    if body and length is None and max_size is not None and body > max_size:
        raise too_large(f"request body of {body} bytes exceeds the maximum upload size of {max_size} bytes")
    return CreationPlan(length=length, body_bytes=body)


@dataclass(frozen=True, slots=True)
class PatchPlan:
    new_length: int | None  # a length declared by this PATCH for a deferred upload
    max_bytes: int  # how many body bytes may be accepted
    body_bytes: int | None  # Content-Length, when the client sent one


def decide_patch(
    *,
    stored_offset: int,
    stored_length: int | None,
    client_offset: int,
    upload_length: str | None,
    content_length: str | None,
    max_size: int | None,
) -> PatchPlan:
    """tus "PATCH": the offsets must match, and the body must fit the (possibly deferred) length."""
    if client_offset != stored_offset:
        # The current offset rides along: TUSKit 3.x re-sends a failed PATCH without a HEAD and
        # takes Upload-Offset from whatever response it gets, so this lets it resume at once.
        raise TusError(
            409,
            f"Upload-Offset {client_offset} does not match the upload's offset {stored_offset}",
            {"Upload-Offset": str(stored_offset)},
        )
    new_length: int | None = None
    declared = parse_non_negative("Upload-Length", upload_length, required=False)
    if declared is not None:
        if stored_length is not None and declared != stored_length:
            raise bad_request(f"Upload-Length {declared} differs from the length {stored_length} set before")
        if stored_length is None:
            if declared < stored_offset:
                raise bad_request(f"Upload-Length {declared} is below the bytes already stored ({stored_offset})")
            if max_size is not None and declared > max_size:
                raise too_large(f"Upload-Length {declared} exceeds the maximum upload size of {max_size} bytes")
            new_length = declared
    length = stored_length if stored_length is not None else new_length
    if length is not None:
        limit = length - stored_offset
    elif max_size is not None:
        limit = max_size - stored_offset
    else:
        limit = MAX_REPRESENTABLE - stored_offset
    body = parse_non_negative("Content-Length", content_length, required=False)
    if body is not None and body > limit:
        if length is not None:
            raise too_large(f"body of {body} bytes at offset {stored_offset} exceeds Upload-Length {length}")
        raise too_large(f"body of {body} bytes at offset {stored_offset} exceeds the maximum upload size")
    return PatchPlan(new_length=new_length, max_bytes=limit, body_bytes=body)


def decide_download(*, offset: int, length: int | None) -> None:
    """GET is served only for finished uploads: partial bytes would be mistaken for the file."""
    if length is None or offset < length:
        shown = "unknown" if length is None else str(length)
        raise TusError(409, f"upload is not finished ({offset} of {shown} bytes); GET serves finished uploads")
