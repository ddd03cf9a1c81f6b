"""tus "Expiration" extension: unfinished uploads expire after a period without activity.

"The Upload-Expires response header indicates the time after which the unfinished upload
expires." It is sent on creation, PATCH and HEAD responses of unfinished uploads, as an RFC 9110
IMF-fixdate. An expired upload answers 410 Gone; a sweeper (periodic, and `tusd-py sweep` once)
deletes its bytes. Finished uploads never expire by this rule.

The sweeper takes each upload's lock only if it is free (``Locker.try_lock``): an upload that
a client is writing right now is active by definition and is never swept from under it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from storage_backends.base import CAP_EXPIRATION
from tusd_py.locks.locker import UploadLocked
from tusd_py.model.errors import TusError
from tusd_py.model.storage_errors import StorageError
from tusd_py.model.upload import UploadInfo
from tusd_py.protocol.response_headers import http_date
from tusd_py.protocol.upload_state import expires_at, is_expired
from tusd_py.uploads.actor import SERVER
from tusd_py.uploads.extension_api import Extension

if TYPE_CHECKING:
    from tusd_py.uploads.operations import Uploads
    from tusd_py.uploads.tus_service import TusService

log = structlog.get_logger(__name__)


class Expiration(Extension):
    name = "expiration"
    requires = CAP_EXPIRATION

    def upload_headers(self, service: TusService, info: UploadInfo) -> dict[str, str]:
        deadline = expires_at(info, service.config.expire_after)
        return {} if deadline is None else {"Upload-Expires": http_date(deadline)}

    def check_access(self, service: TusService, info: UploadInfo) -> None:
        if is_expired(info, service.config.expire_after, time.time()):
            raise TusError(410, "upload expired; start a new upload")


@dataclass
class SweepReport:
    expired: int = 0
    skipped_busy: int = 0
    orphans: int = 0


async def sweep(uploads: Uploads, now: float | None = None) -> SweepReport:
    """Delete every expired, unfinished upload that nobody is writing, and backend debris."""
    service = uploads.service
    expire_after = service.config.expire_after
    report = SweepReport()
    if expire_after <= 0:
        return report
    now = time.time() if now is None else now

    def active_since(fresh: UploadInfo) -> bool:  # activity may have happened since the listing
        return not is_expired(fresh, expire_after, now)

    async for info in service.store.list_uploads():
        if not is_expired(info, expire_after, now):
            continue
        try:
            deleted = await uploads.delete(SERVER, info.id, keep=active_since)
        except UploadLocked:
            report.skipped_busy += 1
            continue
        except StorageError:
            log.exception("could not expire upload", upload_id=info.id)
            continue
        if deleted is not None:
            report.expired += 1
            log.info("upload expired", upload_id=info.id, offset=deleted.offset, length=deleted.length)
    report.orphans = await service.store.sweep_orphans(now - expire_after)
    return report
