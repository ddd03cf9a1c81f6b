"""Parsing of tus request headers (tus 1.0.0, "Headers" section).

Every parser takes the raw header value (``None`` when absent) and returns a typed value or raises
:class:`~tusd_py.model.errors.TusError` with a 4xx status and a reason. Numbers are strict: the spec
defines Upload-Offset and Upload-Length as non-negative integers, so signs, blanks, decimals and
non-ASCII digits are all refused rather than "helpfully" coerced.
"""

from __future__ import annotations

import re

from tusd_py.model.errors import TusError, bad_request

TUS_VERSION = "1.0.0"
SUPPORTED_VERSIONS = (TUS_VERSION,)
OFFSET_OCTET_STREAM = "application/offset+octet-stream"

# 2**63 - 1: the largest length any peer (tusd, S3, the OS) can represent; anything above is bogus.
MAX_REPRESENTABLE = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_non_negative(name: str, value: str | None, *, required: bool = True) -> int | None:
    """Parse a header that holds a non-negative decimal integer."""
    if value is None:
        if required:
            raise bad_request(f"missing {name} header")
        return None
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        if text.isdigit() and text.isascii():
            raise bad_request(f"{name} is too large")
        raise bad_request(f"{name} must be a non-negative integer, got {_quote(value)}")
    number = int(text)
    if number > MAX_REPRESENTABLE:
        raise bad_request(f"{name} is too large")
    return number


def check_tus_resumable(value: str | None) -> None:
    """Every request but OPTIONS must carry a supported Tus-Resumable (spec: 412 otherwise)."""
    if value is None:
        raise TusError(412, "missing Tus-Resumable header", {"Tus-Version": ",".join(SUPPORTED_VERSIONS)})
    if value.strip() not in SUPPORTED_VERSIONS:
        raise TusError(
            412,
            f"unsupported tus version {_quote(value)}; this server speaks {TUS_VERSION}",
            {"Tus-Version": ",".join(SUPPORTED_VERSIONS)},
        )


def check_patch_content_type(value: str | None) -> None:
    """PATCH bodies MUST be application/offset+octet-stream (spec: 415 otherwise)."""
    media_type = (value or "").split(";", 1)[0].strip().lower()
    if media_type != OFFSET_OCTET_STREAM:
        shown = _quote(value) if value is not None else "none"
        raise TusError(415, f"Content-Type must be {OFFSET_OCTET_STREAM}, got {shown}")


def parse_defer_length(value: str | None) -> bool:
    """Upload-Defer-Length: the only legal value is 1."""
    if value is None:
        return False
    if value.strip() != "1":
        raise bad_request(f"Upload-Defer-Length must be 1, got {_quote(value)}")
    return True


def _quote(value: str, limit: int = 40) -> str:
    """Echo client input safely: bounded and printable, so reasons never reflect huge or binary junk."""
    shown = value if len(value) <= limit else value[:limit] + "..."
    return repr(shown.encode("ascii", "backslashreplace").decode("ascii"))
