"""Upload-Metadata (tus 1.0.0, "Upload-Metadata").

"The Upload-Metadata request and response header MUST consist of one or more comma-separated
key-value pairs. The key and value MUST be separated by a space. The key MUST NOT contain spaces
and commas and MUST NOT be empty. The key SHOULD be ASCII encoded and the value MUST be Base64
encoded. All keys MUST be unique. The value MAY be empty. In these cases, the space, which would
normally separate the key and the value, MAY be left out."

Values are kept as decoded bytes (they may be binary) and re-encoded with canonical Base64, so a
value sent in canonical form comes back from HEAD exactly as sent.
"""

from __future__ import annotations

import base64
import binascii
import re

from tusd_py.errors import bad_request

Metadata = dict[str, bytes | None]

MAX_METADATA_BYTES = 64 * 1024
_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]{1,256}")  # printable ASCII except space and comma


def parse_metadata(header: str | None) -> Metadata:
    """Parse the header; an absent or empty header (tuspy sends ``Upload-Metadata:``) means none."""
    if header is None or not header.strip():
        return {}
    if len(header) > MAX_METADATA_BYTES:
        raise bad_request(f"Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes")
    result: Metadata = {}
    for raw_pair in header.split(","):
        pair = raw_pair.strip()
        if not pair:
            raise bad_request("Upload-Metadata has an empty key-value pair")
        key, _, encoded = pair.partition(" ")
        encoded = encoded.strip()
        if not _KEY.fullmatch(key):
            raise bad_request(f"Upload-Metadata key {key[:40]!r} is not printable ASCII without spaces")
        if key in result:
            raise bad_request(f"Upload-Metadata key {key!r} appears twice")
        if " " in encoded:
            raise bad_request(f"Upload-Metadata value of {key!r} contains a space")
        result[key] = _decode_value(key, encoded) if encoded else None
    return result


def _decode_value(key: str, encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"Upload-Metadata value of {key!r} is not valid Base64") from None


def format_metadata(metadata: Metadata) -> str:
    """The header value for HEAD responses, pairs in the order they were stored."""
    parts = []
    for key, value in metadata.items():
        parts.append(key if value is None else f"{key} {base64.b64encode(value).decode('ascii')}")
    return ",".join(parts)


def text_value(metadata: Metadata, key: str) -> str | None:
    """A metadata value as text, or None when absent, empty or not UTF-8."""
    value = metadata.get(key)
    if not value:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None
