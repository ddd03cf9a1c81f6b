"""Core protocol handlers: OPTIONS, HEAD, PATCH and GET (tus 1.0.0 "Core Protocol").

Thin by design: parse with ``tusd_py.protocol``, let the operation layer
(:class:`~tusd_py.uploads.operations.Uploads`) decide and act, write the response.
"""

from __future__ import annotations

from aiohttp import web

from tusd_py.http.gate import actor
from tusd_py.http.requests import body_verifier
from tusd_py.model.upload import UploadInfo
from tusd_py.protocol.decisions import decide_download, decide_patch
from tusd_py.protocol.download import digest_headers, download_headers
from tusd_py.protocol.headers import check_patch_content_type, parse_non_negative
from tusd_py.protocol.ranges import parse_range
from tusd_py.protocol.response_headers import capabilities, upload_state_headers
from tusd_py.uploads.operations import AppendPlan, Body, Uploads
from tusd_py.uploads.tus_service import TusService


def upload_id_of(request: web.Request) -> str:
    return request.match_info.get("upload_id", "")


async def options(uploads: Uploads, request: web.Request) -> web.StreamResponse:
    service = uploads.service
    headers = capabilities(service.advertised_extension_names, service.config.max_size)
    for ext in service.extensions:
        headers.update(ext.options_headers())
    return web.Response(status=204, headers=headers)


def state_headers(service: TusService, info: UploadInfo) -> dict[str, str]:
    """What HEAD reports about an upload, with what the extensions add."""
    return {**upload_state_headers(info), **service.upload_headers(info)}


async def head(uploads: Uploads, request: web.Request) -> web.StreamResponse:
    info = await uploads.state(actor(request), upload_id_of(request))
    return web.Response(status=200, headers=state_headers(uploads.service, info))


async def patch(uploads: Uploads, request: web.Request) -> web.StreamResponse:
    service = uploads.service
    check_patch_content_type(request.headers.get("Content-Type"))
    client_offset = parse_non_negative("Upload-Offset", request.headers.get("Upload-Offset"))
    assert client_offset is not None
    verifier = body_verifier(request, service.extensions)  # a malformed Upload-Checksum is refused before any byte

    def decide(info: UploadInfo) -> AppendPlan:
        return decide_patch(
            stored_offset=info.offset,
            stored_length=info.length,
            client_offset=client_offset,
            upload_length=request.headers.get("Upload-Length"),
            content_length=request.headers.get("Content-Length"),
            max_size=service.config.max_size,
        )

    body = Body(request.content, verifier=verifier)
    info = await uploads.append(actor(request), upload_id_of(request), body, decide)
    headers = {"Upload-Offset": str(info.offset)}
    headers.update(service.upload_headers(info))
    return web.Response(status=204, headers=headers)


async def get(uploads: Uploads, request: web.Request) -> web.StreamResponse:
    info = await uploads.read(actor(request), upload_id_of(request), download=True)
    return await send_upload(uploads.service, request, info)


async def send_upload(service: TusService, request: web.Request, info: UploadInfo) -> web.StreamResponse:
    """The bytes of a finished upload, whole or one Range (also for signed download links)."""
    decide_download(offset=info.offset, length=info.length)
    total = info.offset
    byte_range = parse_range(request.headers.get("Range"), total)
    headers = {
        **download_headers(info.metadata),
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if info.sha256:
        headers.update(digest_headers(info.sha256))
    start, end, status = 0, total, 200
    if byte_range is not None:
        start, end, status = byte_range.start, byte_range.end, 206
        headers["Content-Range"] = byte_range.content_range(total)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    if request.method == "HEAD":
        await response.prepare(request)
        await response.write_eof()
        return response
    # The first block is read before the headers go out, so an upload deleted by a racing DELETE
    # (or unreadable storage) still gets its own status. A failure later in the stream can only
    # cut the connection (see middlewares.error_responses).
    blocks = aiter(service.store.read(info, start, end))
    first = await anext(blocks, b"")
    await response.prepare(request)
    if first:
        await response.write(first)
        async for block in blocks:
            await response.write(block)
    await response.write_eof()
    return response
