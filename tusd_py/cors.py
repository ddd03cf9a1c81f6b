"""CORS for browser clients (tus-js-client, Uppy).

Hand-written rather than aiohttp-cors: that library binds CORS to individual routes and cannot
wrap the catch-all ``*`` routes the tus dispatcher needs for X-HTTP-Method-Override; the rules
needed here fit in one small, tested module.
"""

from __future__ import annotations

from collections.abc import Mapping

from tusd_py.protocol.operation import OVERRIDE_HEADER

ALLOWED_METHODS = "POST, GET, HEAD, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = (
    "Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, "
    "Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, "
    "Upload-Checksum"
)
# Every header a tus client may need to read: browsers hide the rest from JavaScript.
EXPOSED_HEADERS = (
    "Location, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Defer-Length, Upload-Concat, "
    "Upload-Expires, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, "
    "Repr-Digest, X-Request-ID, Content-Disposition, Content-Range, WWW-Authenticate"
)
MAX_AGE = "86400"


def allowed_origin(origin: str | None, allowed: list[str]) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when this origin gets no CORS headers."""
    if not origin:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """A CORS preflight, answered before the gate. An OPTIONS carrying a method override is not one:
    the gate refuses it (tusd_py.protocol.operation, rule 1)."""
    return (
        method == "OPTIONS"
        and "Origin" in headers
        and "Access-Control-Request-Method" in headers
        and OVERRIDE_HEADER not in headers
    )


def cors_headers(origin_value: str, *, preflight: bool) -> dict[str, str]:
    headers = {"Access-Control-Allow-Origin": origin_value, "Access-Control-Expose-Headers": EXPOSED_HEADERS}
    if origin_value != "*":
        headers["Vary"] = "Origin"
    if preflight:
        headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        headers["Access-Control-Max-Age"] = MAX_AGE
    return headers
