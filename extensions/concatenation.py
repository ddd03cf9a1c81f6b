"""tus "Concatenation" and "concatenation-unfinished" extensions.

Clients upload parts in parallel as partial uploads (tus-js-client ``parallelUploads``), then
create the final upload from them. With concatenation-unfinished the final may be created
before every partial is finished; it is assembled the moment the last one finishes.

Only the final upload is handed to post-finish processing, once; partials never are. A PATCH to
a final upload is 403. The assembly is idempotent (the backend rebuilds the final from scratch),
so a crash mid-assembly is repaired by crash recovery at the next start.

Which finals wait for which partial is kept in memory and rebuilt from the finals' infos at start-up,
rather than written into the partials' infos: a partial may be mid-PATCH when its final is
created, and rewriting its info then would race that PATCH (or force interrupting it). With
several instances the partial may be finished by one that never saw the final: then the first
HEAD of the final that finds every partial complete assembles it (``refresh``), on any instance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from storage_backends.base import CAP_CONCATENATION
from tusd_py.http.requests import upload_url
from tusd_py.locks.locker import UploadLocked
from tusd_py.model.errors import TusError, bad_request
from tusd_py.model.storage_errors import UploadNotFound
from tusd_py.model.upload import UploadInfo
from tusd_py.protocol import upload_state
from tusd_py.protocol.concat import parse_upload_concat
from tusd_py.protocol.metadata import parse_metadata
from tusd_py.quotas.ledger import QuotaExceeded
from tusd_py.uploads.extension_api import Extension, Handler

if TYPE_CHECKING:
    from tusd_py.uploads.operations import Uploads
    from tusd_py.uploads.tus_service import TusService

log = structlog.get_logger(__name__)


async def create_final(uploads: Uploads, request: web.Request) -> web.StreamResponse:
    """POST with ``Upload-Concat: final;...``: parse, then the operation layer's concatenate."""
    from extensions.creation import new_upload_id
    from tusd_py.http.gate import actor

    service = uploads.service
    concat = parse_upload_concat(request.headers.get("Upload-Concat"), service.config.base_path)
    assert concat is not None and concat.role == "final"
    if request.headers.get("Upload-Length") is not None:
        raise bad_request("a final upload must not carry Upload-Length: its length is the sum of its partials")
    metadata = parse_metadata(request.headers.get("Upload-Metadata"))
    info = await uploads.concatenate(
        actor(request), concat.partial_ids, metadata, has_body=request.body_exists, new_id=new_upload_id()
    )
    headers = {"Location": upload_url(request, service.config, info.id), **service.upload_headers(info)}
    return web.Response(status=201, headers=headers)


async def assemble_if_ready(service: TusService, final_id: str) -> bool:
    """Build the final upload if all its partials are finished. True when it is (now) finished."""
    async with service.locker.lock(final_id) as fence:
        final = await service.store.get_info(final_id)
        if upload_state.is_finished(final):
            return True
        try:
            partials = [await service.store.get_info(pid) for pid in final.partials]
        except UploadNotFound:
            log.warning("final upload lost a partial before assembly", upload_id=final_id)
            return False
        if not all(upload_state.is_complete(p) for p in partials):
            return False
        total = sum(p.offset for p in partials)
        max_size = service.config.max_size
        if max_size is not None and total > max_size:
            log.warning("final upload would exceed the max size; not assembled", upload_id=final_id, total=total)
            return False
        if service.quotas is not None:
            # The assembled bytes are claimed before a byte is copied: a final of deferred partials
            # reserved nothing at creation (raises QuotaExceeded, 413, and nothing is assembled).
            await service.quotas.grow(final, total)
        if final.length is None:
            final.length = total
            await service.store.update_info(final, fence)
        await service.store.concatenate(final, partials, fence)
        final = await service.store.get_info(final_id)
        await service.finish(final, fence)
        return True


def concatenation(service: TusService) -> Concatenation:
    return next(ext for ext in service.extensions if isinstance(ext, Concatenation))


class Concatenation(Extension):
    name = "concatenation"
    requires = CAP_CONCATENATION

    def __init__(self) -> None:
        self.waiting: dict[str, set[str]] = {}  # partial id -> ids of unfinished finals that need it

    def wait_for(self, final: UploadInfo) -> None:
        for partial_id in final.partials:
            self.waiting.setdefault(partial_id, set()).add(final.id)

    async def on_final_created(self, service: TusService, info: UploadInfo) -> None:
        self.wait_for(info)
        await assemble_if_ready(service, info.id)

    async def recover(self, service: TusService, info: UploadInfo) -> None:
        if upload_state.awaits_partials(info):
            self.wait_for(info)
            try:
                await assemble_if_ready(service, info.id)
            except QuotaExceeded as exc:
                log.info("final upload not assembled: over its owner's quota", upload_id=info.id, reason=exc.reason)

    async def refresh(self, service: TusService, info: UploadInfo) -> UploadInfo:
        """A final whose last partial was finished by another instance (which does not know the
        final: ``waiting`` is per process) is assembled by the first HEAD that finds it ready."""
        if not upload_state.awaits_partials(info):
            return info
        try:
            if await assemble_if_ready(service, info.id):
                return await service.store.get_info(info.id)
        except (UploadLocked, UploadNotFound):
            pass  # being assembled or deleted right now: report what is stored
        return info

    def creation_handler(self, request: web.Request) -> Handler | None:
        header = request.headers.get("Upload-Concat")
        return create_final if header is not None and header.strip().startswith("final") else None

    def prepare_upload(self, request: web.Request, info: UploadInfo) -> None:
        header = request.headers.get("Upload-Concat")
        if header is None:
            return
        if header.strip() != "partial":
            raise bad_request("Upload-Concat must be 'partial' or 'final;<url> <url>...'")
        info.concat = "partial"

    def upload_headers(self, service: TusService, info: UploadInfo) -> dict[str, str]:
        if info.concat == "partial":
            return {"Upload-Concat": "partial"}
        if info.concat == "final":
            urls = " ".join(service.config.base_path + pid for pid in info.partials)
            return {"Upload-Concat": f"final;{urls}"}
        return {}

    def check_write(self, service: TusService, info: UploadInfo) -> None:
        refusal = upload_state.refuses_bytes(info)
        if refusal is not None:
            raise TusError(403, refusal)

    async def on_finished(self, service: TusService, info: UploadInfo) -> None:
        for final_id in sorted(self.waiting.pop(info.id, set())):
            try:
                await assemble_if_ready(service, final_id)
            except QuotaExceeded as exc:
                # The partial's own request succeeded; the final stays unassembled, and its HEAD says why.
                log.info("final upload not assembled: over its owner's quota", upload_id=final_id, reason=exc.reason)
                continue
            except UploadLocked:
                # Another partial's request is assembling this final right now; it saw us finished.
                continue
            except UploadNotFound:
                continue


class ConcatenationUnfinished(Extension):
    name = "concatenation-unfinished"
    requires = CAP_CONCATENATION
