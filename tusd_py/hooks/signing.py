"""Webhook signatures: ``Tusd-Py-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The MAC covers ``"<t>." + raw body``. Binding the timestamp into the MAC lets a receiver refuse
old deliveries (replays) by checking ``t`` against its clock; the ``event_id`` in the body lets
it drop duplicates inside that window. Receivers may see several ``v1=`` entries (a sender
rotating secrets) and accept if any one matches. Verify over the raw bytes received, before
parsing JSON: re-serialising would change the bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Tusd-Py-Signature"
DEFAULT_TOLERANCE_SECONDS = 300.0


class SignatureError(ValueError):
    """The delivery is not authentic or too old; the receiver must not act on it."""


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """For receivers: raise :class:`SignatureError` unless ``header`` signs ``body`` recently."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("malformed signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("signature timestamp is outside the tolerance")
    expected = _mac(secret, timestamp, body)
    # compare_digest on every candidate: timing must not reveal how much of a guess was right.
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match")
