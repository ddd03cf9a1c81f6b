"""Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload), every interop version we serve.

What Apple's URLSession speaks on iOS 17+ / macOS 14+ with no tus library. A request is a draft
request when it carries ``Upload-Draft-Interop-Version`` and no ``Tus-Resumable``; it then takes
the same URLs, gate (auth), storage, locks, quotas, hooks, expiration and post-finish pipeline
as tus, through the same :class:`~tusd_py.uploads.tus_service.TusService` operations. A draft upload *is* a
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

from extensions.creation import new_upload_id
from extensions.termination import terminate
from storage_backends.base import CAP_DEFER_LENGTH
from tusd_py.hooks import HookType
from tusd_py.http import tus_handlers as core
from tusd_py.http.gate import actor, caller_id
from tusd_py.http.interim import send_interim
from tusd_py.http.requests import upload_url
from tusd_py.model.errors import TusError
from tusd_py.model.upload import UploadInfo
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
from tusd_py.protocol.upload_state import claimed_bytes
from tusd_py.uploads.extension_api import Extension, Handler
from tusd_py.uploads.operations import AppendPlan, Body, Uploads
from tusd_py.uploads.tus_service import TusService

DraftHandler = Callable[[Uploads, web.Request, DraftVersion], Awaitable[web.StreamResponse]]


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
    async def run(uploads: Uploads, request: web.Request) -> web.StreamResponse:
        service = uploads.service
        version = draft_version(request.headers.get(INTEROP_HEADER))
        if version is None:
            shown = request.headers.get(INTEROP_HEADER, "")[:8]
            raise problem(400, f"{INTEROP_HEADER} {shown!r} is not served here; this server speaks {served_versions()}")
        try:
            return await handler(uploads, request, version)
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
async def create(uploads: Uploads, request: web.Request, version: DraftVersion) -> web.StreamResponse:
    service = uploads.service
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
    info = UploadInfo(id=new_upload_id(), length=plan.length, metadata=metadata)
    location = ""

    def named(created: UploadInfo) -> None:
        nonlocal location
        location = upload_url(request, service.config, created.id)

    async def announce(created: UploadInfo) -> None:
        # Under the new upload's lock, before the 104 names it: a client that HEADs the moment it
        # learns the URL must find this request holding the lock (and take it over), not slip in
        # before it and report an offset that this request's bytes then move (seen through nginx + Redis).
        interim = {"Location": location, INTEROP_HEADER: str(version.number)}
        if version.limits_in_104:
            interim.update(await _limit_header(service, version, created.owner, created))
        await send_interim(request, 104, "Upload Resumption Supported", interim)

    has_content = request.body_exists
    body = Body(request.content, plan.body_bytes) if has_content else None
    end = plan.length if plan.length is not None else service.config.max_size or MAX_REPRESENTABLE
    try:
        info = await uploads.create(
            actor(request), info, body, on_created=named, on_locked=announce,
            max_bytes=capped(end, service.config.max_append_size), completes=plan.complete,
        )  # fmt: skip
        if plan.complete and not upload_state.is_complete(info):
            raise inconsistent_length(
                f"the request said it completes the upload, but it ends at {info.offset} of {info.length} bytes"
            )
    except TusError as exc:
        if location:
            exc.headers.setdefault("Location", location)  # the upload exists: the client can resume it
        raise
    headers = {"Location": location, **_state(version, info)}
    if not upload_state.is_complete(info):
        headers.update(await _limit_header(service, version, info.owner, info))
    return web.Response(status=201, headers=headers)


@_draft
async def head(uploads: Uploads, request: web.Request, version: DraftVersion) -> web.StreamResponse:
    service = uploads.service
    info = await uploads.state(actor(request), request.match_info.get("upload_id", ""))
    headers = {**_state(version, info), "Cache-Control": "no-store"}
    headers.update(await _limit_header(service, version, info.owner, info))
    return web.Response(status=version.head_status, headers=headers)


@_draft
async def append(uploads: Uploads, request: web.Request, version: DraftVersion) -> web.StreamResponse:
    service = uploads.service
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

    def decide(info: UploadInfo) -> AppendPlan:
        return decide_append(
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

    body = Body(request.content, request.content_length)
    info = await uploads.append(
        actor(request), request.match_info.get("upload_id", ""), body, decide, completes=complete
    )
    if complete and not upload_state.is_complete(info):
        raise inconsistent_length(
            f"the request said it completes the upload, but it ends at {info.offset} of {info.length} bytes"
        )
    done = upload_state.is_complete(info)
    headers = _state(version, info)
    if not done:
        headers.update(await _limit_header(service, version, info.owner, info))
    return web.Response(status=version.completing_append_status if done else version.append_status, headers=headers)


@_draft
async def cancel(uploads: Uploads, request: web.Request, version: DraftVersion) -> web.StreamResponse:
    await terminate(uploads, request)
    return web.Response(status=204, headers={INTEROP_HEADER: str(version.number)})


@_draft
async def options(uploads: Uploads, request: web.Request, version: DraftVersion) -> web.StreamResponse:
    service = uploads.service
    response = await core.options(uploads, request)
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
