"""Content-Type and Content-Disposition for GET, from metadata the client chose.

A client-chosen type is served only if it cannot make a browser run script on our origin
(HTML, SVG, XML, JavaScript would be stored XSS). Anything else is served as
application/octet-stream and as an attachment.
"""

from __future__ import annotations

import re
from urllib.parse import quote

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


def content_disposition(filename: str | None, inline: bool) -> str:
    """RFC 6266: an ASCII fallback ``filename`` plus ``filename*`` in UTF-8 for everything else."""
    kind = "inline" if inline else "attachment"
    if not filename:
        return kind
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]  # never a path
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f")
    if not name:
        return kind
    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"%' else "_" for ch in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
