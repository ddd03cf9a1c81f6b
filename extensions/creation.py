"""tus "Creation", "Creation With Upload" and "Creation Defer Length" extensions.

POST to the collection creates an upload and answers 201 with its absolute Location. With
creation-with-upload the POST body (Content-Type application/offset+octet-stream) is the first
chunk; any failure after the upload exists still carries Location, so the client can resume it
instead of starting over.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from extensions.base import Extension, Handler, RouteKey
from storage_backends.base import CAP_DEFER_LENGTH, UploadInfo
from tusd_py.errors import TusError
from tusd_py.gate import caller_id
from tusd_py.protocol import upload_state
from tusd_py.protocol.decisions import decide_creation
from tusd_py.protocol.headers import MAX_REPRESENTABLE, OFFSET_OCTET_STREAM
from tusd_py.protocol.metadata import parse_metadata
from tusd_py.service import TusService


def new_upload_id() -> str:
    """128 random bits, URL-safe: unguessable, so an upload URL works as a capability."""
    return secrets.token_urlsafe(16)


def has_upload_body(request: web.Request) -> bool:
    content_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return content_type == OFFSET_OCTET_STREAM and request.body_exists


async def create(service: TusService, request: web.Request) -> web.StreamResponse:
    for ext in service.extensions:
        takeover = ext.creation_handler(request)
        if takeover is not None:
            return await takeover(service, request)
    with_body = service.has_extension("creation-with-upload") and has_upload_body(request)
    plan = decide_creation(
        upload_length=request.headers.get("Upload-Length"),
        defer_length=request.headers.get("Upload-Defer-Length"),
        content_length=request.headers.get("Content-Length") if with_body else None,
        max_size=service.config.max_size,
        defer_supported=service.has_extension("creation-defer-length"),
    )
    metadata = parse_metadata(request.headers.get("Upload-Metadata"))
    verifier = service.verifier(request) if with_body else None
    info = UploadInfo(id=new_upload_id(), length=plan.length, metadata=metadata, owner=caller_id(request))
    for ext in service.extensions:
        ext.prepare_upload(request, info)
    info = await service.create(request, info)
    location = service.upload_url(request, info.id)
    headers = {"Location": location}
    try:
        if upload_state.is_complete(info):  # Upload-Length: 0 is complete the moment it exists
            await service.finish(info)
        elif with_body:
            limit = info.length - info.offset if info.length is not None else _deferred_limit(service, info)
            limit = await service.body_limit(info, limit, plan.body_bytes)
            async with service.locker.lock(info.id) as fence:
                info = await service.write_body(request, info, max_bytes=limit, verifier=verifier, fence=fence)
            headers["Upload-Offset"] = str(info.offset)
    except TusError as exc:
        # The upload exists from here on: whatever went wrong, the client can still resume it.
        exc.headers.setdefault("Location", location)
        raise
    headers.update(service.upload_headers(info))
    return web.Response(status=201, headers=headers)


def _deferred_limit(service: TusService, info: UploadInfo) -> int:
    return (service.config.max_size or MAX_REPRESENTABLE) - info.offset


class Creation(Extension):
    name = "creation"

    def routes(self) -> dict[RouteKey, Handler]:
        return {("collection", "POST"): create}


class CreationWithUpload(Extension):
    name = "creation-with-upload"


class CreationDeferLength(Extension):
    name = "creation-defer-length"
    requires = CAP_DEFER_LENGTH
