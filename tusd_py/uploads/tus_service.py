"""The tus service: state and operations shared by the core handlers and the extensions.

Handlers stay thin: they parse headers with the pure functions in ``tusd_py.protocol`` and call
the operations here (load with access checks, write a body, finish an upload), which in turn call
the storage backend. Everything that must happen the same way for PATCH and for
creation-with-upload lives here once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec
import structlog
from aiohttp import StreamReader

from storage_backends.base import DataStore
from tusd_py.config.values import Config
from tusd_py.database.reconcile import Reconciler
from tusd_py.hooks import HookDispatcher, HookEvent, HookType, build_event
from tusd_py.hooks.context import event_here, forwarded_headers, request_id
from tusd_py.locks.locker import Locker
from tusd_py.model.error_codes import ErrorCode
from tusd_py.model.errors import StateStoreUnavailable, TusError, insufficient_storage, lock_lost
from tusd_py.model.fencing import NO_FENCE, Fence, FenceLost
from tusd_py.model.lifecycle import Lifecycle
from tusd_py.model.storage_errors import StorageFull, UploadNotFound, VerificationFailed
from tusd_py.model.upload import UPLOAD_ID, BodyEnded, EndReason, UploadInfo
from tusd_py.protocol import upload_state
from tusd_py.protocol.headers import MAX_REPRESENTABLE
from tusd_py.telemetry import metrics
from tusd_py.uploads.body import BodyStream

if TYPE_CHECKING:
    from tusd_py.quotas.ledger import QuotaLedger
    from tusd_py.uploads.extension_api import Extension, Verifier

log = structlog.get_logger(__name__)


# How a body that ended early is answered (the bytes that arrived are kept in every case).
BODY_END_STATUS: dict[EndReason, tuple[int, str]] = {
    EndReason.TOO_LONG: (413, "request body exceeds what this upload may still hold (its length or a quota)"),
    EndReason.HANDED_OVER: (423, "a newer request for this upload took over; its bytes so far are kept"),
    EndReason.IDLE: (400, "request body ended early"),
    EndReason.CLIENT_GONE: (400, "request body ended early"),
}


@dataclass
class TusService:
    config: Config
    store: DataStore
    locker: Locker
    extensions: list[Extension]
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    hooks: HookDispatcher | None = None
    quotas: QuotaLedger | None = None
    #: Idempotent state-store writes retried while the database is unreachable (finish, termination).
    reconciler: Reconciler = field(default_factory=Reconciler)
    #: Run before a new upload is admitted; each may raise (StateStoreUnavailable: 503).
    admission_checks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def extension_names(self) -> list[str]:
        return [ext.name for ext in self.extensions]

    @property
    def advertised_extension_names(self) -> list[str]:
        """What OPTIONS lists in Tus-Extension: the tus extensions, not other protocols."""
        return [ext.name for ext in self.extensions if ext.advertised]

    def has_extension(self, name: str) -> bool:
        return name in self.extension_names

    async def refresh(self, info: UploadInfo) -> UploadInfo:
        """The upload after every extension caught up with work another instance left due."""
        for ext in self.extensions:
            info = await ext.refresh(self, info)
        return info

    def upload_headers(self, info: UploadInfo) -> dict[str, str]:
        headers: dict[str, str] = {}
        for ext in self.extensions:
            headers.update(ext.upload_headers(self, info))
        return headers

    def check_write(self, info: UploadInfo) -> None:
        for ext in self.extensions:
            ext.check_write(self, info)

    # -- creation -------------------------------------------------------------------------------
    async def admit(self, info: UploadInfo) -> UploadInfo:
        """Run pre-create hooks (which may reject, or change id and metadata) and reserve quota.

        Returns the info to create; :meth:`create` releases the quota again if storing it fails.
        """
        if self.hooks is not None:
            event = build_event(
                HookType.PRE_CREATE,
                info,
                user_id=info.owner,
                request_id=request_id(),
                headers=forwarded_headers(),
            )
            result = await self.hooks.run_pre_create(event)
            if result.rejection is not None:
                raise TusError(result.rejection.status, result.rejection.message, code=ErrorCode.HOOK_REJECTED)
            if result.change is not None:
                info = result.apply(info)
                if not UPLOAD_ID.fullmatch(info.id):
                    raise TusError(500, "a pre-create hook chose an invalid upload id")
        for check in self.admission_checks:
            await check()
        if self.quotas is not None:
            await self.quotas.reserve(info)
        return info

    async def create(self, info: UploadInfo) -> UploadInfo:
        """Admit and store a new upload; announce it to listeners. Called by the operation layer
        (``tusd_py/uploads/operations.py``), which decided the switch and the owner."""
        info = await self.admit(info)
        try:
            await self.store.create(info)
        except BaseException:
            if self.quotas is not None:
                await self.reconciler.attempt(f"quota.release:{info.id}", lambda: self._release_quota(info.id))
            raise
        await self.lifecycle.created(info)
        return info

    async def _release_quota(self, upload_id: str) -> None:
        if self.quotas is not None:
            await self.quotas.release(upload_id)

    async def _settle_quota(self, info: UploadInfo) -> None:
        if self.quotas is not None:
            await self.quotas.finished(info)

    async def body_limit(self, info: UploadInfo, protocol_limit: int, body_bytes: int | None) -> int:
        """How many body bytes a request may add: the protocol's limit, and for uploads whose
        length is still unknown, the owner's remaining quota (refused up front when the
        Content-Length already says it will not fit)."""
        if info.length is not None or self.quotas is None:
            return protocol_limit
        room = await self.quotas.room(info.owner)
        if room is None:
            return protocol_limit
        if body_bytes is not None and body_bytes > room:
            metrics.QUOTA_REFUSALS.labels("bytes").inc()
            raise TusError(413, f"quota exceeded: {room} bytes left for this user, the body has {body_bytes}")
        return min(protocol_limit, room)

    def deferred_room(self, info: UploadInfo) -> int:
        """What an upload of unknown length may still take by the protocol (quota comes on top)."""
        return (self.config.max_size or MAX_REPRESENTABLE) - info.offset

    async def declare_length(self, info: UploadInfo, length: int) -> None:
        if self.quotas is not None:
            await self.quotas.grow(info, length)
        info.length = length

    # -- writing --------------------------------------------------------------------------------
    async def write_body(
        self,
        content: StreamReader,
        info: UploadInfo,
        *,
        max_bytes: int,
        verifier: Verifier | None,
        fence: Fence,
        on_stream: Callable[[BodyStream], None] | None = None,
    ) -> UploadInfo:
        """Stream the request body into the upload at its offset; return the info with the new offset.

        The caller holds the upload's lock and passes its ``fence``. Bytes that arrive before a
        broken connection are kept; a checksum mismatch keeps none; a lost lock (FenceLost) keeps
        nothing after the refused commit and answers 423 (503 if the lock service is unreachable).
        """
        observers: list[Callable[[bytes], None]] = []
        if verifier is not None:
            observers.append(verifier.observe)
        stream = BodyStream(
            content,
            max_bytes=max_bytes,
            idle_timeout=self.config.body_idle_timeout,
            observers=observers,
        )
        if on_stream is not None:
            on_stream(stream)
        start = info.offset
        try:
            info.offset = await self.store.write(info, stream, verifier.verify if verifier else None, fence)
            metrics.record_body(info.offset - start)
        except FenceLost as exc:
            info = await self.store.get_info(info.id)
            metrics.record_body(info.offset - start)
            log.warning("write refused: lock lost", upload_id=info.id, kept=info.offset - start, why=exc.reason)
            headers = {"Upload-Offset": str(info.offset), **self.upload_headers(info)}
            raise lock_lost(exc.reason, unreachable=exc.unreachable, headers=headers) from None
        except VerificationFailed as exc:
            raise TusError(460, exc.reason, self.upload_headers(info)) from None
        except StorageFull as exc:
            info = await self.store.get_info(info.id)  # the bytes that reached the disk are kept
            metrics.record_body(info.offset - start)
            log.warning("storage full", upload_id=info.id, kept=info.offset - start, error=str(exc))
            raise insufficient_storage({"Upload-Offset": str(info.offset), **self.upload_headers(info)}) from None
        except BodyEnded as exc:
            # Some bytes may have been kept: learn the durable offset before answering.
            info = await self.store.get_info(info.id)
            metrics.record_body(info.offset - start)
            log.info("body ended early", upload_id=info.id, kept=info.offset - start, why=exc.reason, detail=str(exc))
            if upload_state.is_complete(info):
                await self.finish(info, fence)
            status, reason = BODY_END_STATUS[exc.reason]
            raise TusError(status, f"{reason}: {exc}" if status == 400 else reason) from None
        if info.length is None and self.quotas is not None:
            try:
                await self.quotas.grow(info, info.offset)
            except StateStoreUnavailable as exc:  # the bytes are stored; finish settles the claim
                log.warning("quota not updated: state store unreachable", upload_id=info.id, error=exc.detail)
        self.lifecycle.progress(info)
        if upload_state.is_complete(info):
            await self.finish(info, fence)
        return info

    async def finish(self, info: UploadInfo, fence: Fence = NO_FENCE) -> None:
        """Record the upload as finished and hand it to post-finish processing, once.

        The whole-upload SHA-256 is not computed here: it is a processing step (see
        :meth:`record_digest`), so the write path never hashes bytes the client did not ask to verify.

        A pre-finish hook may reject the upload: its bytes stay stored (they arrived intact), it
        is recorded as finished so it is never re-run, but it is not handed to post-finish
        processing, and the rejection is raised so the client gets the hook's status and message.
        """
        if upload_state.is_finished(info):
            return
        if self.quotas is not None:
            # Re-checked before the upload is finalized (resumable-upload draft -10 on): the final
            # size is claimed; a no-op for uploads whose length was reserved up front. With the
            # state store down the bytes are in and were reserved as they came: the settle below
            # is retried, and finishing needs no database.
            try:
                await self.quotas.grow(info, upload_state.claimed_bytes(info))
            except StateStoreUnavailable as exc:
                log.warning(
                    "quota not re-checked at finish: state store unreachable", upload_id=info.id, error=exc.detail
                )
        rejection = None
        if self.hooks is not None and info.concat != "partial":
            rejection = await self.hooks.run_pre_finish(self.pre_event(HookType.PRE_FINISH, info))
        info.finished_at = time.time()
        info.finish_refused = rejection is not None
        await self.store.finish(info, fence)
        log.info("upload finished", upload_id=info.id, length=info.length)
        if self.quotas is not None:
            settled = msgspec.structs.replace(info)  # a retry later must see the info as it is now
            await self.reconciler.attempt(f"quota.finished:{info.id}", lambda: self._settle_quota(settled))
        for ext in self.extensions:
            await ext.on_finished(self, info)
        if rejection is not None:
            log.info("pre-finish hook rejected the upload", upload_id=info.id, status=rejection.status)
            raise TusError(rejection.status, rejection.message, code=ErrorCode.HOOK_REJECTED)
        # A partial upload is only a piece of a concatenation: the final upload is what gets processed.
        if info.concat != "partial":
            await self.lifecycle.finished(info)

    def pre_event(self, hook_type: HookType, info: UploadInfo) -> HookEvent:
        return event_here(hook_type, info, storage=self.store.location(info.id))

    async def record_digest(self, upload_id: str, sha256: str) -> None:
        """Store the whole-upload SHA-256 computed by post-finish processing (HEAD/GET then send it).

        First without the upload's lock, as a write the store makes conditional on the finished
        upload it reads (``DataStore.record_digest``: the filesystem's facts xattr through one
        descriptor, S3's info PUT If-Match): that costs the lock service nothing (issue 27's
        budget). Where the store cannot (no xattrs, the upload changed under it), under the lock,
        so it cannot race a termination. Either way an upload deleted meanwhile is left alone.
        """
        if await self.store.record_digest(upload_id, sha256):
            return
        async with self.locker.lock(upload_id) as fence:
            try:
                info = await self.store.get_info(upload_id)
            except UploadNotFound:
                return
            if info.sha256 == sha256 or not upload_state.is_complete(info):
                return
            info.sha256 = sha256
            await self.store.update_info(info, fence)

    async def recover(self) -> int:
        """At start-up: finish uploads whose last byte landed before a crash but were never
        finished, and let extensions rebuild their state (e.g. finals waiting for partials)."""
        count = 0
        async for info in self.store.list_uploads():
            if upload_state.needs_finish(info):
                async with self.locker.lock(info.id) as fence:
                    fresh = await self.store.get_info(info.id)
                    if upload_state.needs_finish(fresh):
                        try:
                            await self.finish(fresh, fence)
                        except TusError as exc:  # a pre-finish rejection: nobody to tell but the log
                            log.info("recovered upload rejected at finish", upload_id=info.id, reason=exc.reason)
                        count += 1
                info = fresh
            for ext in self.extensions:
                await ext.recover(self, info)
        return count
