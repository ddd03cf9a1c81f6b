"""Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload), every interop version we serve.

What Apple's URLSession speaks on iOS 17+ / macOS 14+ with no tus library. A request is a draft
request when it carries ``Upload-Draft-Interop-Version`` and no ``Tus-Resumable``; it then takes
the same URLs, gate (auth), storage, locks, quotas, hooks, expiration and post-finish pipeline
as tus, through the same :class:`~tusd_py.service.TusService` operations. A draft upload *is* a
tus upload: tus HEAD and GET see it.

* creation: POST to the collection with ``Upload-Complete`` (v3: ``Upload-Incomplete``). The
  upload is created, a ``104 Upload Resumption Supported`` carries its Location, then the content
  streams in like a PATCH; 201 with Location, the completeness field and Upload-Offset.
* offset retrieval: HEAD, with the tus HEAD's lock takeover (a resuming client ends its dead request);
  from v9 (-12) GET too, answered like HEAD (before, a GET stays the tus download).
* append: PATCH with Upload-Offset and the completeness field.
* cancellation: DELETE, which ends any request still writing the upload (as tus termination).

The version differences are the table in ``tusd_py/protocol/draft_versions.py``; the field
parsing and the status decisions are pure (``draft_fields.py``, ``draft_decisions.py``). Errors are
RFC 9457 problem documents. An append with ``Upload-Complete: ?0`` whose bytes reach a declared
``Upload-Length`` completes the upload (a tus upload is complete at its length) and says so with
``Upload-Complete: ?1``: drafts up to -11 would wait for a request saying ``?1``; -12 allows it
("marked as completed by the client or the server").
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from extensions.base import Extension, Handler
from extensions.creation import new_upload_id
from extensions.termination import terminate
from storage_backends.base import CAP_DEFER_LENGTH, UploadInfo
from storage_backends.fencing import Fence
from tusd_py import core
from tusd_py.body import BodyStream
from tusd_py.errors import TusError
from tusd_py.gate import caller_id
from tusd_py.hooks import HookType
from tusd_py.interim import send_interim
from tusd_py.protocol import upload_state
from tusd_py.protocol.draft_decisions import (
    as_problem,
    capped,
    decide_append,
    decide_creation,
    error_says_complete,
    inconsistent_length,
    problem,
)
from tusd_py.protocol.draft_fields import (
    UploadLimits,
    completeness,
    format_limits,
    parse_integer,
    representation_metadata,
    upload_limits,
)
from tusd_py.protocol.draft_versions import INTEROP_HEADER, DraftVersion, draft_version, served_versions
from tusd_py.protocol.headers import MAX_REPRESENTABLE
from tusd_py.quotas import claimed_bytes
from tusd_py.service import TusService

DraftHandler = Callable[[TusService, web.Request, DraftVersion], Awaitable[web.StreamResponse]]


def is_draft_request(request: web.Request) -> bool:
    return INTEROP_HEADER in request.headers and "Tus-Resumable" not in request.headers


async def limits_of(service: TusService, owner: str | None, info: UploadInfo | None) -> UploadLimits:
    quotas = service.quotas
    expires = None
    if info is not None and service.has_extension("expiration"):
        expires = upload_state.expires_at(info, service.config.expire_after)
    return upload_limits(
        max_size=service.config.max_size,
        quota_room=await quotas.room(owner) if quotas is not None else None,
        claimed=claimed_bytes(info) if info is not None else 0,
        expires_at=expires,
        now=time.time(),
        min_size=0,  # resumability is offered at any size ("MUST use min-size=0" when nothing else applies)
        max_append_size=service.config.max_append_size,
        min_append_size=service.config.min_append_size,
    )


async def _limit_header(
    service: TusService, version: DraftVersion, owner: str | None, info: UploadInfo | None
) -> dict[str, str]:
    value = format_limits(await limits_of(service, owner, info), version)
    return {} if value is None else {"Upload-Limit": value}


def _draft(handler: DraftHandler) -> Handler:
    """Runs a draft handler with its version; every error it raises leaves as a problem document
    carrying the interop version (and, for a 413, the limits: "MUST include the Upload-Limit")."""

    @functools.wraps(handler)
    async def run(service: TusService, request: web.Request) -> web.StreamResponse:
        version = draft_version(request.headers.get(INTEROP_HEADER))
        if version is None:
            shown = request.headers.get(INTEROP_HEADER, "")[:8]
            raise problem(400, f"{INTEROP_HEADER} {shown!r} is not served here; this server speaks {served_versions()}")
        try:
            return await handler(service, request, version)
        except TusError as exc:
            protocol_error = exc.problem is not None  # raised by the draft's own rules, not by processing
            error = as_problem(exc)
            error.headers.setdefault(INTEROP_HEADER, str(version.number))
            if error.status == 413:
                error.headers.update(await _limit_header(service, version, _owner(request), None))
            if request.method in ("POST", "PATCH"):  # -06 on: errors carry the completeness field
                finished = await _finished(service, request, error)
                done = error_says_complete(
                    status=error.status, protocol_error=protocol_error, finished=finished,
                    complete_means_processed=version.complete_means_processed,
                )  # fmt: skip
                error.headers.setdefault(version.complete_field, version.complete_value(done))
            raise error from None

    return run


async def _finished(service: TusService, request: web.Request, error: TusError) -> bool:
    upload_id = request.match_info.get("upload_id") or error.headers.get("Location", "").rsplit("/", 1)[-1]
    if not upload_id:
        return False
    try:
        return upload_state.is_finished(await service.store.get_info(upload_id))
    except Exception:  # gone, malformed id, storage trouble: nothing was completed for this client
        return False


def _finish_may_refuse(service: TusService) -> bool:
    """Whether finishing may have refused an upload (a pre-finish hook answers for it): then the
    final response of a completed upload is not known, and -12's replay of it is not offered."""
    return service.hooks is not None and service.hooks.wants(HookType.PRE_FINISH)


def _owner(request: web.Request) -> str | None:
    try:
        return caller_id(request)
    except TusError:
        return None


async def _stream(
    service: TusService,
    request: web.Request,
    info: UploadInfo,
    *,
    complete: bool,
    max_bytes: int,
    body_bytes: int | None,
    handover: list[BodyStream],
    fence: Fence,
) -> UploadInfo:
    """Append the request content (the caller holds the lock, whose ``fence`` it passes); a
    completing request whose length was unknown declares it now, and the upload is finished,
    once, by the shared service."""
    info = await service.write_body(
        request,
        info,
        max_bytes=await service.body_limit(info, max_bytes, body_bytes),
        verifier=None,
        fence=fence,
        on_stream=handover.append,
    )
    if complete and info.length is None:
        fresh = await service.store.get_info(info.id)
        await service.declare_length(fresh, fresh.offset)
        await service.store.update_info(fresh)
        await service.finish(fresh)
        info = fresh
    if complete and not upload_state.is_complete(info):
        raise inconsistent_length(
            f"the request said it completes the upload, but it ends at {info.offset} of {info.length} bytes"
        )
    return info


def _handover(streams: list[BodyStream]) -> Callable[[], None]:
    def release() -> None:
        for stream in streams:
            stream.hand_over()

    return release


def _state(version: DraftVersion, info: UploadInfo) -> dict[str, str]:
    headers = {
        INTEROP_HEADER: str(version.number),
        version.complete_field: version.complete_value(upload_state.is_complete(info)),
        "Upload-Offset": str(info.offset),
    }
    if version.length_in_responses and info.length is not None:
        headers["Upload-Length"] = str(info.length)
    return headers


@_draft
async def create(service: TusService, request: web.Request, version: DraftVersion) -> web.StreamResponse:
    fields = request.headers
    plan = decide_creation(
        complete=completeness(version, fields.get(version.complete_field)),
        complete_field=version.complete_field,
        upload_offset=parse_integer(fields.get("Upload-Offset")),
        offset_given="Upload-Offset" in fields,
        upload_length=parse_integer(fields.get("Upload-Length")),
        content_length=request.content_length,
        max_size=service.config.max_size,
        max_append_size=service.config.max_append_size,
        min_append_size=service.config.min_append_size,
    )
    if plan.length is None and CAP_DEFER_LENGTH not in service.store.capabilities:
        raise problem(400, "this storage needs the upload's length up front: send Upload-Length or Content-Length")
    metadata = representation_metadata(fields.get("Content-Type"), fields.get("Content-Disposition"))
    info = UploadInfo(id=new_upload_id(), length=plan.length, metadata=metadata, owner=caller_id(request))
    info = await service.create(request, info)
    location = service.upload_url(request, info.id)
    interim = {"Location": location, INTEROP_HEADER: str(version.number)}
    if version.limits_in_104:
        interim.update(await _limit_header(service, version, info.owner, info))
    handover: list[BodyStream] = []
    try:
        async with service.locker.lock(info.id, on_release_request=_handover(handover)) as fence:
            # Locked before the 104 names the upload: a client that HEADs the moment it learns the URL
            # must find this request holding the lock (and take it over), not slip in before it and
            # report an offset that this request's bytes then move (seen through nginx + Redis).
            await send_interim(request, 104, "Upload Resumption Supported", interim)
            if upload_state.is_complete(info):  # an empty representation: complete on creation
                await service.finish(info)
            else:
                end = info.length if info.length is not None else service.config.max_size or MAX_REPRESENTABLE
                limit = capped(end - info.offset, service.config.max_append_size)
                info = await _stream(
                    service, request, info, complete=plan.complete, max_bytes=limit, body_bytes=plan.body_bytes,
                    handover=handover, fence=fence,
                )  # fmt: skip
    except TusError as exc:
        exc.headers.setdefault("Location", location)  # the upload exists: the client can resume it
        raise
    headers = {"Location": location, **_state(version, info)}
    if not upload_state.is_complete(info):
        headers.update(await _limit_header(service, version, info.owner, info))
    return web.Response(status=201, headers=headers)


@_draft
async def head(service: TusService, request: web.Request, version: DraftVersion) -> web.StreamResponse:
    info = await core.load_for_head(service, request, service.upload_id(request))
    headers = {**_state(version, info), "Cache-Control": "no-store"}
    headers.update(await _limit_header(service, version, info.owner, info))
    return web.Response(status=version.head_status, headers=headers)


@_draft
async def append(service: TusService, request: web.Request, version: DraftVersion) -> web.StreamResponse:
    fields = request.headers
    media_type = fields.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if version.append_media_type is not None and media_type != version.append_media_type:
        raise problem(
            415, f"an append must be Content-Type: {version.append_media_type} (interop version {version.number})"
        )
    raw_complete = fields.get(version.complete_field)
    complete = completeness(version, raw_complete)
    if complete is None and raw_complete is not None:
        raise problem(400, f"malformed {version.complete_field} header (a structured Boolean, ?0 or ?1)")
    complete = True if complete is None else complete  # absent: this content ends the upload (-01, -02)
    upload_id = service.upload_id(request)
    handover: list[BodyStream] = []
    async with service.locker.lock(upload_id, on_release_request=_handover(handover)) as fence:
        info = await service.load(request, upload_id)
        service.check_write(info)
        plan = decide_append(
            stored_offset=info.offset,
            stored_length=info.length,
            upload_complete=upload_state.is_complete(info),
            client_offset=parse_integer(fields.get("Upload-Offset")),
            complete=complete,
            upload_length=parse_integer(fields.get("Upload-Length")),
            content_length=request.content_length,
            max_size=service.config.max_size,
            max_append_size=service.config.max_append_size,
            min_append_size=service.config.min_append_size,
            replay_completed=version.complete_means_processed,
            final_response_known=upload_state.is_finished(info) and not _finish_may_refuse(service),
        )
        if plan.new_length is not None:
            await service.declare_length(info, plan.new_length)
            await service.store.update_info(info)
        if not plan.replay:  # a replay appends nothing and answers as the completing append did
            info = await _stream(
                service, request, info, complete=complete, max_bytes=plan.max_bytes, body_bytes=plan.body_bytes,
                handover=handover, fence=fence,
            )  # fmt: skip
    done = upload_state.is_complete(info)
    headers = _state(version, info)
    if not done:
        headers.update(await _limit_header(service, version, info.owner, info))
    return web.Response(status=version.completing_append_status if done else version.append_status, headers=headers)


@_draft
async def cancel(service: TusService, request: web.Request, version: DraftVersion) -> web.StreamResponse:
    await terminate(service, request)
    return web.Response(status=204, headers={INTEROP_HEADER: str(version.number)})


@_draft
async def options(service: TusService, request: web.Request, version: DraftVersion) -> web.StreamResponse:
    response = await core.options(service, request)
    response.headers[INTEROP_HEADER] = str(version.number)
    limits = format_limits(await limits_of(service, None, None), version)
    if limits is not None:
        response.headers["Upload-Limit"] = limits
    return response


_HANDLERS: dict[tuple[str, str], Handler] = {
    ("collection", "POST"): create,
    ("collection", "OPTIONS"): options,
    ("upload", "OPTIONS"): options,
    ("upload", "HEAD"): head,
    ("upload", "GET"): head,  # only for versions whose GET retrieves the offset (request_handler)
    ("upload", "PATCH"): append,
    ("upload", "DELETE"): cancel,
}


class ResumableUploadDraft(Extension):
    name = "resumable-upload-draft"
    advertised = False  # not a tus extension: Tus-Extension does not list it

    def request_handler(self, target: str, method: str, request: web.Request) -> Handler | None:
        if not is_draft_request(request):
            return None
        if method == "GET" and not _get_retrieves_offset(request):
            return None  # before -12 a GET is the tus download, whatever else it carries
        return _HANDLERS.get((target, method))


def _get_retrieves_offset(request: web.Request) -> bool:
    version = draft_version(request.headers.get(INTEROP_HEADER))
    return version is not None and version.get_retrieves_offset
