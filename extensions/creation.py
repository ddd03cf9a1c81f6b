"""tus "Creation", "Creation With Upload" and "Creation Defer Length" extensions.

POST to the collection creates an upload and answers 201 with its absolute Location. With
creation-with-upload the POST body (Content-Type application/offset+octet-stream) is the first
chunk; any failure after the upload exists still carries Location, so the client can resume it
instead of starting over. A body that would not be stored (another Content-Type) is refused,
never dropped.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from storage_backends.base import CAP_DEFER_LENGTH
from tusd_py.http.gate import actor
from tusd_py.http.requests import body_verifier, upload_url
from tusd_py.model.errors import TusError
from tusd_py.model.upload import UploadInfo
from tusd_py.protocol.decisions import decide_creation
from tusd_py.protocol.headers import OFFSET_OCTET_STREAM
from tusd_py.protocol.metadata import parse_metadata
from tusd_py.protocol.switches import Op
from tusd_py.uploads.extension_api import Extension, Handler, RouteKey
from tusd_py.uploads.operations import Body, Uploads


def new_upload_id() -> str:
    """128 random bits, URL-safe: unguessable, so an upload URL works as a capability."""
    return secrets.token_urlsafe(16)


def has_upload_body(request: web.Request) -> bool:
    """Whether a creation carries bytes for the upload; a body of another type is refused (415)."""
    if not request.body_exists:
        return False
    content_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if content_type != OFFSET_OCTET_STREAM:
        raise TusError(
            415,
            f"a creation's body must be Content-Type: {OFFSET_OCTET_STREAM} (creation-with-upload); "
            "send it without a body otherwise",
        )
    return True


async def create(uploads: Uploads, request: web.Request) -> web.StreamResponse:
    service = uploads.service
    if "Upload-Concat" in request.headers:  # a partial or a final, never silently a plain upload
        uploads.require(actor(request), Op.CONCATENATE)
    for ext in service.extensions:
        takeover = ext.creation_handler(request)
        if takeover is not None:
            return await takeover(uploads, request)
    with_body = has_upload_body(request)
    plan = decide_creation(
        upload_length=request.headers.get("Upload-Length"),
        defer_length=request.headers.get("Upload-Defer-Length"),
        content_length=request.headers.get("Content-Length") if with_body else None,
        max_size=service.config.max_size,
        defer_supported=service.has_extension("creation-defer-length"),
    )
    metadata = parse_metadata(request.headers.get("Upload-Metadata"))
    body = Body(request.content, plan.body_bytes, body_verifier(request, service.extensions)) if with_body else None
    info = UploadInfo(id=new_upload_id(), length=plan.length, metadata=metadata)
    for ext in service.extensions:
        ext.prepare_upload(request, info)
    location = ""

    def named(created: UploadInfo) -> None:
        nonlocal location
        location = upload_url(request, service.config, created.id)

    try:
        info = await uploads.create(actor(request), info, body, on_created=named)
    except TusError as exc:
        # The upload exists from here on: whatever went wrong, the client can still resume it.
        if location:
            exc.headers.setdefault("Location", location)
        raise
    headers = {"Location": location}
    if body is not None:
        headers["Upload-Offset"] = str(info.offset)
    headers.update(service.upload_headers(info))
    return web.Response(status=201, headers=headers)


class Creation(Extension):
    name = "creation"

    def routes(self) -> dict[RouteKey, Handler]:
        return {("collection", "POST"): create}


class CreationWithUpload(Extension):
    name = "creation-with-upload"


class CreationDeferLength(Extension):
    name = "creation-defer-length"
    requires = CAP_DEFER_LENGTH
