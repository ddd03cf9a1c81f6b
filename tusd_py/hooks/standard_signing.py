"""Standard Webhooks signatures (https://www.standardwebhooks.com): ``webhook-id``,
``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>``.

The MAC covers ``"<id>.<timestamp>.<body>"``, so a receiver verifies with the ready library of its
language (``standardwebhooks`` on PyPI and npm, and others) and de-duplicates on ``webhook-id``,
which is the event's ``event_id``: the same on every redelivery. Signing goes through the
``standardwebhooks`` package itself, so sender and receivers agree on every byte.

The spec gives secrets as ``whsec_<base64 key>``; a secret without that prefix (the form the older
``Tusd-Py-Signature`` uses) is keyed by its UTF-8 bytes, which a receiver passes to the library as
``"whsec_" + base64(secret)``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``; raise ValueError for a ``whsec_`` secret that is not base64."""
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a whsec_ secret must be followed by standard base64") from None
    else:
        key = secret.encode()
    if not key:
        raise ValueError("the webhook secret must not be empty")
    return key


def standard_headers(key: bytes, event_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The three headers for ``body`` sent at ``timestamp`` (unix seconds)."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    signature = Webhook(key).sign(msg_id=event_id, timestamp=when, data=body.decode("utf-8"))
    return {ID_HEADER: event_id, TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature}
