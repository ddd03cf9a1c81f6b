"""Signed download links: the rule that decides whether a link is valid, as pure functions.

An ``<audio src>`` or ``<video src>`` cannot send ``Authorization``, so the owner of an upload asks
the Recordings API for a link that carries its own proof: ``?expires=<unix seconds>&signature=<s>``
where ``s`` is HMAC-SHA256 (RFC 2104) over the upload id and the expiry, with a key only the server
holds, base64url without padding. The link is valid for that one upload until it expires;
changing the id, the expiry or the signature makes it invalid (403, never a hint which part).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

from tusd_py.model.errors import TusError

EXPIRES = "expires"
SIGNATURE = "signature"
_MAX_DIGITS = 12  # Unix seconds for the next 30,000 years; longer is not a number we issued


def signature(key: bytes, upload_id: str, expires: int) -> str:
    # The separator cannot occur in an id (tusd_py.uploads.tus_service.UPLOAD_ID), so (id, expiry) pairs never collide.
    mac = hmac.new(key, f"{upload_id}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def signed_query(key: bytes, upload_id: str, expires: int) -> str:
    return urlencode({EXPIRES: str(expires), SIGNATURE: signature(key, upload_id, expires)})


def forbidden(reason: str) -> TusError:
    return TusError(403, reason, {"Cache-Control": "no-store"})


def check_link(key: bytes, upload_id: str, expires: str | None, given: str | None, *, now: float) -> None:
    """Raise 403 unless ``expires``/``given`` are a signature we issued for this upload, not yet expired."""
    if expires is None or given is None:
        raise forbidden("download link is not signed (expires and signature are required)")
    if not (expires.isascii() and expires.isdigit() and len(expires) <= _MAX_DIGITS):
        raise forbidden("download link is invalid")
    # Compared in constant time, and before the expiry, so an altered expiry reads as invalid.
    if not hmac.compare_digest(signature(key, upload_id, int(expires)).encode(), given.encode("utf-8", "replace")):
        raise forbidden("download link is invalid")
    if now >= int(expires):
        raise forbidden("download link has expired; ask for a new one")
