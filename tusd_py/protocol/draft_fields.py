"""The fields of "Resumable Uploads for HTTP" (the IETF draft), parsed and written as pure functions.

The draft's fields are Structured Fields (RFC 9651): ``Upload-Complete`` / ``Upload-Incomplete``
a Boolean, ``Upload-Offset`` and ``Upload-Length`` non-negative Integers, ``Upload-Limit`` a
Dictionary. "Other values MUST cause the entire header field to be ignored" (draft -11, "Offset",
"Completeness", "Length"), so a parser here answers None for a malformed value, exactly as for an
absent one; the decisions in ``draft_decisions.py`` then say what is missing.

The representation's metadata ("Upload Creation", client behaviour): ``Content-Type`` is its media
type and ``Content-Disposition`` (RFC 6266) may carry a file name. They become the upload's
``filetype`` and ``filename`` metadata, the keys tus clients use, so GET, hooks and the
Recordings API see a draft upload exactly like a tus one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value

from tusd_py.protocol.draft_versions import PARTIAL_UPLOAD, DraftVersion
from tusd_py.protocol.headers import MAX_REPRESENTABLE, OFFSET_OCTET_STREAM
from tusd_py.protocol.metadata import Metadata, check_metadata

# RFC 9651 sf-boolean and sf-integer (at most 15 digits), each optionally followed by parameters.
_BOOLEAN = re.compile(r"\?([01])(?:;.*)?")
_INTEGER = re.compile(r"([0-9]{1,15})(?:;.*)?")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}")


def parse_boolean(value: str | None) -> bool | None:
    if value is None:
        return None
    match = _BOOLEAN.fullmatch(value.strip())
    return None if match is None else match.group(1) == "1"


def parse_integer(value: str | None) -> int | None:
    """A non-negative sf-integer; None when absent or anything else (a sign, a decimal, junk)."""
    if value is None:
        return None
    match = _INTEGER.fullmatch(value.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return number if number <= MAX_REPRESENTABLE else None


def completeness(version: DraftVersion, value: str | None) -> bool | None:
    """Whether the request says its content ends the upload, read from this version's field
    (v3's ``Upload-Incomplete: ?1`` means more is to come); None when absent or malformed."""
    flag = parse_boolean(value)
    if flag is None:
        return None
    return not flag if version.inverted else flag


def representation_metadata(content_type: str | None, content_disposition: str | None) -> Metadata:
    """``filetype`` from Content-Type, ``filename`` from Content-Disposition (``filename*`` wins, as
    RFC 6266 section 4.3 recommends). Held to the tus metadata limits (``check_metadata``): a name with
    control characters or above 255 bytes is refused with 400, as in Upload-Metadata."""
    metadata: Metadata = {}
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if _MEDIA_TYPE.fullmatch(media_type) and media_type not in (PARTIAL_UPLOAD, OFFSET_OCTET_STREAM):
        metadata["filetype"] = media_type.encode("ascii")
    filename = disposition_filename(content_disposition)
    if filename:
        metadata["filename"] = filename.encode("utf-8", "surrogatepass")
    check_metadata(metadata)
    return metadata


def disposition_filename(value: str | None) -> str | None:
    if not value:
        return None
    message = Message()
    try:
        message["Content-Disposition"] = value
        params = message.get_params(header="content-disposition") or []
    except Exception:  # the email package is lenient, but a parse error must never become a 500
        return None
    plain: str | None = None
    extended: str | None = None
    for key, raw in params[1:]:
        if key.lower() != "filename":
            continue
        if isinstance(raw, tuple):  # filename*=UTF-8''...: RFC 8187 / RFC 2231, decoded here
            try:
                extended = collapse_rfc2231_value(raw)
            except (LookupError, UnicodeError):
                continue
        elif raw:
            plain = raw
    return extended or plain


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """The ``Upload-Limit`` keys ("Limits"); None: that limit does not apply."""

    max_size: int | None = None
    min_size: int | None = None
    max_append_size: int | None = None
    min_append_size: int | None = None
    max_age: int | None = None


def upload_limits(
    *,
    max_size: int | None,
    quota_room: int | None,
    claimed: int,
    expires_at: float | None,
    now: float,
    min_size: int | None = None,
    max_append_size: int | None = None,
    min_append_size: int | None = None,
) -> UploadLimits:
    """The limits of one upload (or, with ``claimed`` 0, of one about to be created).

    ``max-size`` is the smaller of ``--max-size`` and what the owner's quota still allows this
    upload: the bytes it already claims plus the room left. ``max-age`` is the time left until
    the upload expires, counted from now, so it shrinks as the upload ages without activity
    (draft -12: "Allow max-age limit to decrease as expected").
    """
    caps = [cap for cap in (max_size, None if quota_room is None else claimed + quota_room) if cap is not None]
    age = None if expires_at is None else max(0, math.floor(expires_at - now))
    return UploadLimits(
        max_size=min(caps) if caps else None,
        min_size=min_size,
        max_append_size=max_append_size,
        min_append_size=min_append_size,
        max_age=age,
    )


def format_limits(limits: UploadLimits, version: DraftVersion) -> str | None:
    """The ``Upload-Limit`` value for this version (a Dictionary of Integers), None if it has none."""
    if not version.has_limits:
        return None
    members = [
        ("max-size", limits.max_size),
        ("min-size", limits.min_size),
        ("max-append-size", limits.max_append_size),
        ("min-append-size", limits.min_append_size),
        (version.age_key or "max-age", limits.max_age),
    ]
    text = ", ".join(f"{key}={value}" for key, value in members if value is not None)
    return text or None


def parse_limits(value: str | None) -> dict[str, int]:
    """Read an ``Upload-Limit`` back (for tests and the conformance suite): integer members only."""
    result: dict[str, int] = {}
    for member in (value or "").split(","):
        key, _, number = member.strip().partition("=")
        parsed = parse_integer(number)
        if key and parsed is not None:
            result[key] = parsed
    return result
