"""Upload-Metadata (tus 1.0.0, "Upload-Metadata").

"The Upload-Metadata request and response header MUST consist of one or more comma-separated
key-value pairs. The key and value MUST be separated by a space. The key MUST NOT contain spaces
and commas and MUST NOT be empty. The key SHOULD be ASCII encoded and the value MUST be Base64
encoded. All keys MUST be unique. The value MAY be empty. In these cases, the space, which would
normally separate the key and the value, MAY be left out."

Values are kept as decoded bytes (they may be binary) and re-encoded with canonical Base64, so a
value sent in canonical form comes back from HEAD exactly as sent.

The spec sets no size limits; these are ours. Metadata comes back in every HEAD response, and
``filename`` / ``filetype`` end up in GET's (and the S3 object's) Content-Disposition and
Content-Type, so what is accepted at creation must stay sendable: HTTP peers (aiohttp, nginx)
refuse header lines above 8 KiB, and a control character would end a header line early.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

from tusd_py.model.errors import bad_request

Metadata = dict[str, bytes | None]

#: The encoded header, as HEAD sends it back: half of the usual 8 KiB header-line limit.
MAX_METADATA_BYTES = 4096
MAX_METADATA_KEYS = 32
MAX_VALUE_BYTES = 2048  # decoded
#: Values that become response headers on download: UTF-8 text without control characters, and
#: short (255 bytes is the file-name limit of every common filesystem).
HEADER_VALUES = ("filename", "filetype")
MAX_HEADER_VALUE_BYTES = 255
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
    check_metadata(result)
    return result


def check_metadata(metadata: Metadata) -> None:
    """The limits above, for metadata from a client header or from a pre-create hook."""
    if len(metadata) > MAX_METADATA_KEYS:
        raise bad_request(f"Upload-Metadata has more than {MAX_METADATA_KEYS} keys")
    if len(format_metadata(metadata)) > MAX_METADATA_BYTES:
        raise bad_request(f"Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes")
    for key, value in metadata.items():
        if value is not None and len(value) > MAX_VALUE_BYTES:
            raise bad_request(f"Upload-Metadata value of {key!r} is longer than {MAX_VALUE_BYTES} bytes")
    for key in HEADER_VALUES:
        _check_header_value(key, metadata.get(key))


def _check_header_value(key: str, value: bytes | None) -> None:
    if value is None:
        return
    if len(value) > MAX_HEADER_VALUE_BYTES:
        raise bad_request(f"Upload-Metadata {key} is longer than {MAX_HEADER_VALUE_BYTES} bytes")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"Upload-Metadata {key} is not UTF-8 text") from None
    # Cc: C0 controls (CR, LF, NUL...), DEL and the C1 controls.
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise bad_request(f"Upload-Metadata {key} contains control characters")


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


def as_text(value: bytes) -> str | None:
    """A metadata value as text, or None when it is not UTF-8 (metadata values are bytes: tus
    only says they are base64 on the wire)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def text_value(metadata: Metadata, key: str) -> str | None:
    """A metadata value as text, or None when absent, empty or not UTF-8."""
    value = metadata.get(key)
    return as_text(value) if value else None
