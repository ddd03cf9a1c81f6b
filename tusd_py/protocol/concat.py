"""Upload-Concat (tus 1.0.0 "Concatenation" extension) parsing, pure.

"Upload-Concat: partial" marks a partial upload; "Upload-Concat: final;<URL> <URL>..." creates the
final upload from partial uploads, in the given order. URLs may be absolute or absolute paths;
either way they must name uploads of *this* server's collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from tusd_py.model.errors import bad_request
from tusd_py.model.upload import UPLOAD_ID

MAX_PARTIALS = 1000


@dataclass(frozen=True, slots=True)
class ConcatRequest:
    role: str  # "partial" or "final"
    partial_ids: tuple[str, ...] = ()


def parse_upload_concat(header: str | None, base_path: str) -> ConcatRequest | None:
    if header is None:
        return None
    value = header.strip()
    if value == "partial":
        return ConcatRequest("partial")
    if not value.startswith("final;"):
        raise bad_request("Upload-Concat must be 'partial' or 'final;<url> <url>...'")
    urls = value[len("final;") :].split()
    if not urls:
        raise bad_request("Upload-Concat: final lists no partial uploads")
    if len(urls) > MAX_PARTIALS:
        raise bad_request(f"Upload-Concat: final lists more than {MAX_PARTIALS} partial uploads")
    ids = tuple(upload_id_from_url(url, base_path) for url in urls)
    if len(set(ids)) != len(ids):
        raise bad_request("Upload-Concat: final lists the same partial upload more than once")
    return ConcatRequest("final", ids)


def upload_id_from_url(url: str, base_path: str) -> str:
    path = urlsplit(url).path
    if not path.startswith(base_path):
        raise bad_request(f"{url[:80]!r} is not an upload of this server (expected a URL under {base_path})")
    upload_id = path[len(base_path) :]
    if not UPLOAD_ID.fullmatch(upload_id):
        raise bad_request(f"{url[:80]!r} does not name an upload")
    return upload_id
