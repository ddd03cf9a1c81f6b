"""The headers the server sends about an upload, built from plain values (tus 1.0.0 "Headers").

Handlers add what the enabled extensions contribute (``TusService.upload_headers``) on top.
"""

from __future__ import annotations

from email.utils import formatdate

from tusd_py.model.upload import UploadInfo
from tusd_py.protocol import upload_state
from tusd_py.protocol.download import digest_headers
from tusd_py.protocol.headers import SUPPORTED_VERSIONS
from tusd_py.protocol.metadata import format_metadata


def capabilities(extensions: list[str], max_size: int | None) -> dict[str, str]:
    """OPTIONS: the versions, extensions and largest upload this server takes."""
    headers = {"Tus-Version": ",".join(SUPPORTED_VERSIONS)}
    if extensions:
        headers["Tus-Extension"] = ",".join(extensions)
    if max_size is not None:
        headers["Tus-Max-Size"] = str(max_size)
    return headers


def upload_state_headers(info: UploadInfo) -> dict[str, str]:
    """HEAD: where the upload stands. A final concatenation still waiting for its partials has no
    offset to report (tus Concatenation); Repr-Digest once processing recorded the SHA-256."""
    headers = {"Cache-Control": "no-store"}
    if upload_state.reports_offset(info):
        headers["Upload-Offset"] = str(info.offset)
    if info.length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(info.length)
    if info.metadata:
        headers["Upload-Metadata"] = format_metadata(info.metadata)
    if info.sha256 is not None and upload_state.publishes_digest(info):
        headers["Repr-Digest"] = digest_headers(info.sha256)["Repr-Digest"]
    return headers


def http_date(timestamp: float) -> str:
    """RFC 9110 IMF-fixdate, as Upload-Expires requires."""
    return formatdate(timestamp, usegmt=True)
