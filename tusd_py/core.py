"""Core protocol handlers: OPTIONS, HEAD, PATCH and GET (tus 1.0.0 "Core Protocol").

Thin by design: parse with ``tusd_py.protocol``, decide with its pure functions, act through
:class:`~tusd_py.service.TusService`, write the response.
"""

from __future__ import annotations

from aiohttp import web

from storage_backends.base import UploadInfo
from tusd_py.body import BodyStream
from tusd_py.locking import UploadLocked
from tusd_py.protocol.decisions import decide_download, decide_patch
from tusd_py.protocol.download import digest_headers, download_headers
from tusd_py.protocol.headers import check_patch_content_type, parse_non_negative
from tusd_py.protocol.ranges import parse_range
from tusd_py.protocol.response_headers import capabilities, upload_state_headers
from tusd_py.service import TusService


async def options(service: TusService, request: web.Request) -> web.StreamResponse:
    headers = capabilities(service.advertised_extension_names, service.config.max_size)
    for ext in service.extensions:
        headers.update(ext.options_headers())
    return web.Response(status=204, headers=headers)


def state_headers(service: TusService, info: UploadInfo) -> dict[str, str]:
    """What HEAD reports about an upload, with what the extensions add."""
    return {**upload_state_headers(info), **service.upload_headers(info)}


async def head(service: TusService, request: web.Request) -> web.StreamResponse:
    """HEAD takes the upload's lock, as in tusd: a client HEADs to resume, which means its previous
    PATCH is dead to it, even if the server still holds that connection half-open. Taking over
    ends that PATCH and waits for its bytes to be committed, so the offset reported is the one
    the next PATCH will find (on S3 a commit takes a few requests). If the holder does not let go
    in time, the durable state is reported anyway: it is never ahead of the stored bytes."""
    info = await load_for_head(service, request, service.upload_id(request))
    return web.Response(status=200, headers=state_headers(service, info))


async def load_for_head(service: TusService, request: web.Request, upload_id: str) -> UploadInfo:
    """The upload as a HEAD reports it, after taking its lock over (also the draft's HEAD)."""
    try:
        async with service.locker.lock(upload_id):
            info = await service.load(request, upload_id)
    except UploadLocked:
        info = await service.load(request, upload_id)
    # Work another instance left due (a final whose partials it finished) is done before answering.
    return await service.refresh(info)


async def patch(service: TusService, request: web.Request) -> web.StreamResponse:
    check_patch_content_type(request.headers.get("Content-Type"))
    client_offset = parse_non_negative("Upload-Offset", request.headers.get("Upload-Offset"))
    assert client_offset is not None
    upload_id = service.upload_id(request)
    verifier = service.verifier(request)  # a malformed Upload-Checksum is refused before any byte
    handover: list[BodyStream] = []

    def release_requested() -> None:
        for stream in handover:
            stream.hand_over()

    async with service.locker.lock(upload_id, on_release_request=release_requested) as fence:
        info = await service.load(request, upload_id)
        service.check_write(info)
        plan = decide_patch(
            stored_offset=info.offset,
            stored_length=info.length,
            client_offset=client_offset,
            upload_length=request.headers.get("Upload-Length"),
            content_length=request.headers.get("Content-Length"),
            max_size=service.config.max_size,
        )
        if plan.new_length is not None:
            await service.declare_length(info, plan.new_length)
            await service.store.update_info(info)
        info = await service.write_body(
            request,
            info,
            max_bytes=await service.body_limit(info, plan.max_bytes, plan.body_bytes),
            verifier=verifier,
            fence=fence,
            on_stream=handover.append,
        )
    headers = {"Upload-Offset": str(info.offset)}
    headers.update(service.upload_headers(info))
    return web.Response(status=204, headers=headers)


async def get(service: TusService, request: web.Request) -> web.StreamResponse:
    upload_id = service.upload_id(request)
    info = await service.load(request, upload_id)
    return await send_upload(service, request, info)


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
