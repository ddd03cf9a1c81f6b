"""CORS for browser clients (tus-js-client, Uppy).

Hand-written rather than aiohttp-cors: that library binds CORS to individual routes and cannot
wrap the catch-all ``*`` routes the tus dispatcher needs for X-HTTP-Method-Override; the rules
needed here fit in one small, tested module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tusd_py.protocol.operation import OVERRIDE_HEADER

ALLOWED_METHODS = "POST, GET, HEAD, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = (
    "Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, "
    "Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, "
    "Upload-Checksum, Upload-Incomplete, Upload-Complete, Upload-Draft-Interop-Version"
)
# Every header a tus client may need to read: browsers hide the rest from JavaScript.
EXPOSED_HEADERS = (
    "Location, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Defer-Length, Upload-Concat, "
    "Upload-Expires, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, "
    "Repr-Digest, X-Request-ID, Content-Disposition, Content-Range, WWW-Authenticate, "
    "Upload-Incomplete, Upload-Complete, Upload-Draft-Interop-Version, Upload-Limit"
)
MAX_AGE = "86400"


@dataclass(frozen=True)
class CorsPolicy:
    """Who may call from a browser, and what the preflight allows (tusd's -cors-* flags).

    ``origins`` is the list of ``--cors-origins`` (``*``: any); ``pattern`` (``--cors-allow-origin``)
    replaces it with a regular expression searched in the Origin, unanchored as tusd's is. The
    extra methods and headers are added to tus's own, never replace them.
    """

    origins: tuple[str, ...] = ("*",)
    pattern: re.Pattern[str] | None = None
    credentials: bool = False
    methods: str = ALLOWED_METHODS
    allow_headers: str = ALLOWED_HEADERS
    expose_headers: str = EXPOSED_HEADERS
    max_age: str = MAX_AGE
    disabled: bool = False

    @classmethod
    def build(
        cls,
        origins: Sequence[str] = ("*",),
        pattern: str | None = None,
        *,
        credentials: bool = False,
        methods: Sequence[str] = (),
        allow_headers: Sequence[str] = (),
        expose_headers: Sequence[str] = (),
        max_age: int = 86400,
        disabled: bool = False,
    ) -> CorsPolicy:
        return cls(
            origins=tuple(origins),
            pattern=re.compile(pattern) if pattern is not None else None,
            credentials=credentials,
            methods=_joined(ALLOWED_METHODS, methods),
            allow_headers=_joined(ALLOWED_HEADERS, allow_headers),
            expose_headers=_joined(EXPOSED_HEADERS, expose_headers),
            max_age=str(max_age),
            disabled=disabled,
        )


DEFAULT_POLICY = CorsPolicy()


def _joined(base: str, extra: Sequence[str]) -> str:
    known = {item.strip().lower() for item in base.split(",")}
    added = [item.strip() for item in extra if item.strip() and item.strip().lower() not in known]
    return ", ".join([base, *added]) if added else base


def allowed_origin(
    origin: str | None, allowed: list[str] | None = None, policy: CorsPolicy = DEFAULT_POLICY
) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when this origin gets no CORS headers."""
    if not origin or policy.disabled:
        return None
    if policy.pattern is not None:
        return origin if policy.pattern.search(origin) else None
    origins = allowed if allowed is not None else policy.origins
    if "*" in origins:
        # With credentials a browser refuses "*": the origin itself is echoed, as tusd always does.
        return origin if policy.credentials else "*"
    return origin if origin in origins else None


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """A CORS preflight, answered before the gate. An OPTIONS carrying a method override is not one:
    the gate refuses it (tusd_py.protocol.operation, rule 1)."""
    return (
        method == "OPTIONS"
        and "Origin" in headers
        and "Access-Control-Request-Method" in headers
        and OVERRIDE_HEADER not in headers
    )


def cors_headers(origin_value: str, *, preflight: bool, policy: CorsPolicy = DEFAULT_POLICY) -> dict[str, str]:
    headers = {"Access-Control-Allow-Origin": origin_value}
    if origin_value != "*":
        headers["Vary"] = "Origin"
    if policy.credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    if preflight:
        headers["Access-Control-Allow-Methods"] = policy.methods
        headers["Access-Control-Allow-Headers"] = policy.allow_headers
        headers["Access-Control-Max-Age"] = policy.max_age
    else:
        headers["Access-Control-Expose-Headers"] = policy.expose_headers
    return headers
