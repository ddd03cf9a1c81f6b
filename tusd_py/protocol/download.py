"""Content-Type and Content-Disposition for GET, from metadata the client chose.

A client-chosen type is served only if it cannot make a browser run script on our origin
(HTML, SVG, XML, JavaScript would be stored XSS). Anything else is served as
application/octet-stream and as an attachment.

Both values are always sendable whatever the metadata holds (control characters dropped, the
file name bounded), so a download never depends on a header that cannot be sent. The S3 backend
gives its objects the same two values.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote

from tusd_py.protocol.metadata import MAX_HEADER_VALUE_BYTES, Metadata, text_value

_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
_INLINE_PREFIXES = ("audio/", "video/", "image/")
_INLINE_EXACT = {"application/pdf", "text/plain", "application/ogg"}
_NEVER_INLINE = {"image/svg+xml"}


def safe_content_type(filetype: str | None) -> tuple[str, bool]:
    """Return (content type, inline?) for a metadata ``filetype`` value."""
    if not filetype:
        return "application/octet-stream", False
    media = filetype.split(";", 1)[0].strip().lower()
    if not _TYPE.fullmatch(media) or media in _NEVER_INLINE:
        return "application/octet-stream", False
    if media.startswith(_INLINE_PREFIXES) or media in _INLINE_EXACT:
        return media, True
    return "application/octet-stream", False


def download_headers(metadata: Metadata) -> dict[str, str]:
    """Content-Type and Content-Disposition of an upload, from its ``filetype`` and ``filename``."""
    content_type, inline = safe_content_type(text_value(metadata, "filetype"))
    return {
        "Content-Type": content_type,
        "Content-Disposition": content_disposition(text_value(metadata, "filename"), inline),
    }


def content_disposition(filename: str | None, inline: bool) -> str:
    """RFC 6266: an ASCII fallback ``filename`` plus ``filename*`` in UTF-8 for everything else."""
    kind = "inline" if inline else "attachment"
    if not filename:
        return kind
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]  # never a path
    name = _bounded("".join(ch for ch in name if ch >= " " and ch != "\x7f"))
    if not name:
        return kind
    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"%' else "_" for ch in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _bounded(name: str) -> str:
    """At most MAX_HEADER_VALUE_BYTES of UTF-8, keeping a short extension (metadata stored before
    creation enforced that limit may be longer; this keeps the header line a few KiB at most)."""
    if len(name.encode()) <= MAX_HEADER_VALUE_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension.encode()) > 16:
        stem, extension = name, ""
    suffix = "." + extension if extension else ""
    room = MAX_HEADER_VALUE_BYTES - len(suffix.encode())
    return stem.encode()[:room].decode("utf-8", "ignore") + suffix


def digest_headers(sha256: str) -> dict[str, str]:
    """RFC 9530 ``Repr-Digest`` of the whole upload (so clients can verify what landed) and an ETag.

    Strong ETag from the same digest: the bytes of a finished upload never change.
    """
    return {"Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:", "ETag": f'"{sha256}"'}
