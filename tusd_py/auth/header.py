"""Strict parsing of ``Authorization: Bearer <token>`` (RFC 6750 §2.1). Pure.

    credentials = "Bearer" 1*SP b64token

The scheme is case-insensitive (RFC 9110 §11.1). We accept exactly one space and a token in
JWS compact form (three base64url segments joined by dots), because that is the only token we
can verify; anything else is refused before pyjwt sees it, with a reason a person can act on.
"""

from __future__ import annotations

import re

from tusd_py.auth.errors import AuthError, missing_credentials

# Far above any real JWT (a few hundred bytes to a few KB), low enough that garbage costs nothing.
MAX_TOKEN_LENGTH = 8192

_SEGMENT = r"[A-Za-z0-9_-]+"
_JWS_COMPACT = re.compile(rf"{_SEGMENT}\.{_SEGMENT}\.{_SEGMENT}")


def parse_bearer(header_value: str | None) -> str:
    """Return the token from an Authorization header value, or raise :class:`AuthError`."""
    if header_value is None or header_value == "":
        raise missing_credentials()
    scheme, sep, token = header_value.partition(" ")
    if scheme.lower() != "bearer":
        # Another scheme (Basic, Digest...) carries no bearer credentials at all: answer with the
        # bare challenge, as for a missing header, so the client learns which scheme to use.
        raise missing_credentials("authorization scheme must be Bearer")
    if not sep or not token:
        raise AuthError("bearer token is missing")
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthError("bearer token is too long")
    if token != token.strip() or " " in token:
        raise AuthError("malformed Authorization header (expected 'Bearer <token>')")
    if not _JWS_COMPACT.fullmatch(token):
        raise AuthError("bearer token is not a signed JWT")
    return token
