"""The one operation path: every upload operation, from every way in, in one order of steps.

The tus handlers, the resumable-upload draft, the Recordings API, signed links, cleanup, the
expiry sweep and start-up recovery call :class:`Uploads` with an :class:`Actor`; none of them
decides ownership, switches, locking, quota or fencing on its own. The order, for every operation:

1. **switch**: the operation (and each feature it uses) is enabled (``protocol/switches.py``);
   refused before anything is read. The server's own policy (``Role.SERVER``) is not switched.
2. **load and owner**: another user's upload answers 404, exactly like a missing one, *before any
   lock*: a stranger who knows a URL can never take a lock over and cut the owner's request.
   Owners never change, so a small id -> owner memory spares the extra read on the hot path.
3. **lock**: clients take the lock over (the newest request wins, the holder keeps its bytes);
   the server's policy only takes a free lock and never interrupts a client.
4. **re-check under the lock**: the info is read again (state may have moved while waiting) and
   owner, access (410 expired) and writability are decided on that copy.
5. **quota**: every byte that can land is reserved before it lands: the length at creation, a length
   declared later, a deferred body's room, a final's assembled size; and re-checked at finalizing
   (``TusService.finish``), as the resumable-upload draft (-10 on) requires.
6. **fenced commits**: every store call that changes the upload gets the lock's fence.
7. **hooks and events**: the lifecycle (quotas, hooks, the pipeline) hears of the change after it
   is committed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import structlog
from aiohttp import StreamReader

from storage_backends.base import CAP_TERMINATION
from tusd_py.hooks import HookType
from tusd_py.locks.locker import UploadLocked
from tusd_py.model.bounded import BoundedLRU
from tusd_py.model.error_codes import ErrorCode
from tusd_py.model.errors import TusError, bad_request, lock_lost, not_found, too_large
from tusd_py.model.fencing import Fence, FenceLost
from tusd_py.model.storage_errors import UploadNotFound
from tusd_py.model.upload import UPLOAD_ID, UploadInfo
from tusd_py.protocol import upload_state
from tusd_py.protocol.switches import Op, switched_off, switches_for
from tusd_py.uploads.actor import SERVER, Actor, Role
from tusd_py.uploads.body import BodyStream
from tusd_py.uploads.rates import CreationRate
from tusd_py.uploads.tus_service import TusService

if TYPE_CHECKING:
    from tusd_py.pipeline.service import Pipeline
    from tusd_py.uploads.extension_api import Verifier

log = structlog.get_logger(__name__)

#: Owners remembered for the pre-lock check (an id is 22 characters: about 2 MiB at this size).
OWNER_MEMORY = 16384


class AppendPlan(Protocol):
    """What a protocol's pure append decision says (tus ``decide_patch``, the draft's ``decide_append``)."""

    @property
    def new_length(self) -> int | None: ...
    @property
    def max_bytes(self) -> int: ...
    @property
    def body_bytes(self) -> int | None: ...


@dataclass
class Body:
    """A request's content for the store: the stream, its declared size, and its checker."""

    content: StreamReader
    declared: int | None = None  # Content-Length (None: chunked or unknown)
    verifier: Verifier | None = None
    streams: list[BodyStream] = field(default_factory=list)  # to end on a takeover
    handed_over: bool = False

    def hand_over(self) -> None:
        """A newer request asked for the lock. Remembered: the lock is taken before the body's
        stream exists (the upload is read and checked, quota reserved), and a request that asks
        in between must still end the stream once it comes, or it waits the whole lock timeout."""
        self.handed_over = True
        for stream in self.streams:
            stream.hand_over()

    def adopt(self, stream: BodyStream) -> None:
        """The stream the write reads this body through (see :meth:`hand_over`)."""
        self.streams.append(stream)
        if self.handed_over:
            stream.hand_over()


@dataclass(frozen=True, slots=True)
class Held:
    info: UploadInfo
    fence: Fence


class _Owners:
    """id -> owner, bounded; owners are immutable, so a hit is as good as a read."""

    def __init__(self, size: int = OWNER_MEMORY) -> None:
        # The value is (owner,): a known id whose owner is None (auth off) is still a hit.
        self._owners: BoundedLRU[str, tuple[str | None]] = BoundedLRU(size)

    def get(self, upload_id: str) -> tuple[bool, str | None]:
        found = self._owners.get(upload_id)
        return (False, None) if found is None else (True, found[0])

    def remember(self, info: UploadInfo) -> None:
        self._owners.put(info.id, (info.owner,))

    def forget(self, upload_id: str) -> None:
        self._owners.pop(upload_id)


def _check_id(upload_id: str) -> None:
    """An id that cannot exist is unknown (404) before it reaches a store, a lock or the memory."""
    if not UPLOAD_ID.fullmatch(upload_id):
        raise not_found("upload not found (malformed id)")


@contextlib.contextmanager
def _refused_commits() -> Iterator[None]:
    """A commit its fence refused (this holder lost the lock) answers 423, or 503 (step 6)."""
    try:
        yield
    except FenceLost as exc:
        raise lock_lost(exc.reason, unreachable=exc.unreachable) from None


class Uploads:
    """The operation layer over one :class:`TusService` (storage, locks, quotas, lifecycle)."""

    def __init__(self, service: TusService) -> None:
        self.service = service
        self._owners = _Owners()
        self.creations = CreationRate(service.config.quota_creations_per_minute)
        self.started_at = time.time()  # finishes from before this moment are an earlier process's

    # -- steps 1 to 4 ---------------------------------------------------------------------------
    def require(self, actor: Actor, op: Op, **features: bool) -> None:
        """Step 1: refuse an operation (or feature) that is switched off. Policy is never switched."""
        if actor.role is Role.SERVER:
            return
        for switch in switches_for(op, **features):
            if not self.service.has_extension(switch.name):
                raise switched_off(op, switch)

    def check(self, actor: Actor, info: UploadInfo) -> None:
        """Owner (404) and access (410 expired) of ``info`` for ``actor``."""
        if not actor.owns(info.owner):
            raise not_found()
        if actor.role is not Role.SERVER:
            for ext in self.service.extensions:
                ext.check_access(self.service, info)

    async def visible(self, actor: Actor, upload_id: str) -> UploadInfo:
        """Step 2: the upload as ``actor`` may see it, without a lock; 404 for anyone else's."""
        _check_id(upload_id)
        try:
            info = await self.service.store.get_info(upload_id)
        except UploadNotFound:
            self._owners.forget(upload_id)
            raise not_found() from None
        self._owners.remember(info)
        self.check(actor, info)
        return info

    async def _owner_first(self, actor: Actor, upload_id: str) -> None:
        """Step 2 before a lock: the owner, from memory when known (it never changes). An actor who
        sees every upload has no owner to check: the read under the lock decides (404, 410), as
        for a remembered owner (another worker of --processes N made most of the uploads it sees)."""
        _check_id(upload_id)
        if actor.sees_every_upload():
            return
        known, owner = self._owners.get(upload_id)
        if not known or not actor.owns(owner):
            # A refusal is never taken from memory: another instance may have deleted the upload
            # and a hook-chosen id made it anew for someone else. The read decides (404 or not).
            await self.visible(actor, upload_id)

    @contextlib.asynccontextmanager
    async def held(
        self,
        actor: Actor,
        upload_id: str,
        *,
        on_release_request: Callable[[], None] | None = None,
        take_over: bool | None = None,
    ) -> AsyncIterator[Held]:
        """Steps 2-4: owner first, then the lock (taken over for clients, only if free for the
        server's policy unless ``take_over``), then the upload read again and checked under it."""
        await self._owner_first(actor, upload_id)
        locker = self.service.locker
        if take_over is None:
            take_over = actor.role is not Role.SERVER
        lock = (
            locker.lock(upload_id, on_release_request=on_release_request) if take_over else locker.try_lock(upload_id)
        )
        async with lock as fence:
            with _refused_commits():
                yield Held(await self.visible(actor, upload_id), fence)

    # -- create ---------------------------------------------------------------------------------
    async def create(
        self,
        actor: Actor,
        info: UploadInfo,
        body: Body | None = None,
        *,
        on_created: Callable[[UploadInfo], None] | None = None,
        on_locked: Callable[[UploadInfo], Awaitable[None]] | None = None,
        max_bytes: int | None = None,
        completes: bool = False,
    ) -> UploadInfo:
        """A new upload owned by ``actor``, with the request's first bytes if it carries them.

        Admission (pre-create hooks, the state store, the quota reservation of its length) comes
        before it exists. ``on_created`` hears of it the moment it exists (a failure after that still
        names the upload, so the client can resume it). ``on_locked`` runs once the new upload's
        lock is held (the draft sends its 104 there, so a HEAD racing the creation finds it taken)."""
        self.require(actor, Op.CREATE, with_body=body is not None, deferred_length=info.length is None)
        self._count_creation(actor)
        info.owner = actor.user_id
        info = await self.service.create(info)
        self._owners.remember(info)
        if on_created is not None:
            on_created(info)
        if body is None and on_locked is None and not upload_state.is_complete(info):
            return info  # nothing to write or finish: no lock to take
        hand_over = body.hand_over if body is not None else None
        async with self.service.locker.lock(info.id, on_release_request=hand_over) as fence:
            with _refused_commits():
                if on_locked is not None:
                    await on_locked(info)
                if upload_state.is_complete(info):  # an empty upload is complete the moment it exists
                    await self.service.finish(info, fence)
                elif body is not None:
                    room = info.remaining if info.remaining is not None else self.service.deferred_room(info)
                    limit = room if max_bytes is None else min(room, max_bytes)
                    info = await self._write(info, body, limit, fence, declared=body.declared)
                await self._complete(actor, info, fence, completes)
        return info

    async def _complete(self, actor: Actor, info: UploadInfo, fence: Fence, completes: bool) -> None:
        """The request said it ends the upload (the draft's ``Upload-Complete: ?1``): a length still
        unknown is the final offset now (declared, so claimed), and the upload is finished."""
        if completes and info.length is None:
            await self._declare_length(actor, info, info.offset, fence)
            await self.service.finish(info, fence)

    def _count_creation(self, actor: Actor) -> None:
        """Step 5 for the upload itself: a user's creations are rated (empty ones claim no bytes)."""
        if actor.role is Role.CLIENT and actor.user_id is not None:
            self.creations.take(actor.user_id)

    # -- append ---------------------------------------------------------------------------------
    async def append(
        self,
        actor: Actor,
        upload_id: str,
        body: Body,
        decide: Callable[[UploadInfo], AppendPlan],
        *,
        completes: bool = False,
    ) -> UploadInfo:
        """Bytes at the upload's offset. ``decide`` is the protocol's pure decision on the stored
        state; ``completes`` (the draft's ``Upload-Complete: ?1``) declares a deferred length as the
        final offset once the bytes are in."""
        self.require(actor, Op.APPEND)
        async with self.held(actor, upload_id, on_release_request=body.hand_over) as held:
            info, fence = held.info, held.fence
            self.service.check_write(info)
            plan = decide(info)
            if plan.new_length is not None:
                await self._declare_length(actor, info, plan.new_length, fence)
            if upload_state.is_finished(info):
                return info  # nothing can land (the decision allowed only an empty replay): no commit
            declared = plan.body_bytes if plan.body_bytes is not None else body.declared
            info = await self._write(info, body, plan.max_bytes, fence, declared=declared)
            await self._complete(actor, info, fence, completes)
        return info

    async def _declare_length(self, actor: Actor, info: UploadInfo, length: int, fence: Fence) -> None:
        """Quota first (the declared length is claimed before a byte of it lands), then the commit."""
        self.require(actor, Op.DECLARE_LENGTH)
        await self.service.declare_length(info, length)
        await self.service.store.update_info(info, fence)

    async def _write(
        self, info: UploadInfo, body: Body, max_bytes: int, fence: Fence, *, declared: int | None
    ) -> UploadInfo:
        """``declared``: the body size the request announced (what the quota check plans for)."""
        limit = await self.service.body_limit(info, max_bytes, declared)
        return await self.service.write_body(
            body.content, info, max_bytes=limit, verifier=body.verifier, fence=fence, on_stream=body.adopt
        )

    # -- read -----------------------------------------------------------------------------------
    async def state(self, actor: Actor, upload_id: str) -> UploadInfo:
        """The upload as HEAD reports it. HEAD takes the lock over, as in tusd: a client HEADs to
        resume, so its previous request is dead to it; taking over ends that request and waits
        for its bytes to be committed. If the holder does not let go in time, the durable state is
        reported anyway (it is never ahead of the stored bytes). Only after the owner check."""
        self.require(actor, Op.READ)
        try:
            async with self.held(actor, upload_id) as held:
                info = held.info
        except UploadLocked:
            info = await self.visible(actor, upload_id)
        # Work another instance left due (a final whose partials it finished) is done before answering.
        return await self.service.refresh(info)

    async def read(self, actor: Actor, upload_id: str, *, download: bool = False) -> UploadInfo:
        """The upload as stored (the API's detail, a link's issue): no lock. With ``download`` its
        bytes are about to be served (GET, a signed link), which ``--disable-download`` refuses."""
        self.require(actor, Op.READ)
        if download and self.service.config.disable_download and actor.role is not Role.SERVER:
            raise TusError(
                403, "downloads are disabled on this server (--disable-download)", code=ErrorCode.SWITCHED_OFF
            )
        return await self.visible(actor, upload_id)

    # -- delete ---------------------------------------------------------------------------------
    async def delete(
        self, actor: Actor, upload_id: str, *, keep: Callable[[UploadInfo], bool] | None = None
    ) -> UploadInfo | None:
        """Delete an upload's bytes, then tell the listeners (quotas, post-terminate hooks, the pipeline).

        Clients (tus and draft DELETE, the Recordings API, its cleanup) need termination switched
        on, take the lock over (a PATCH still streaming is asked to let go and keeps nothing, the
        upload being gone) and may be refused by a pre-terminate hook. The server's policy (expiry,
        scheduled cleanup) deletes only what nobody is writing (UploadLocked otherwise) and asks no
        hook: its deletes are policy, not a request a hook can veto (tusd runs pre-terminate for
        DELETE requests only). ``keep`` decides on the fresh info under the lock (True: leave it).

        Returns the deleted upload's info, or None if the server's policy found it gone or kept it.
        """
        return await self._delete(actor, upload_id, keep, take_over=actor.role is not Role.SERVER)

    async def stop(self, upload_id: str) -> UploadInfo | None:
        """tusd's ``StopUpload`` from a post-receive hook: the server deletes the upload on the hook's
        word, taking over a request still writing it (that is what stopping means), asking no
        pre-terminate hook (as in tusd). None if it was gone already."""
        return await self._delete(SERVER, upload_id, None, take_over=True)

    async def _delete(
        self, actor: Actor, upload_id: str, keep: Callable[[UploadInfo], bool] | None, *, take_over: bool
    ) -> UploadInfo | None:
        self.require(actor, Op.DELETE)
        service = self.service
        if CAP_TERMINATION not in service.store.capabilities:
            raise TusError(501, "this storage backend cannot delete uploads")
        try:
            async with self.held(actor, upload_id, take_over=take_over) as held:
                info = held.info
                if keep is not None and keep(info):
                    return None
                if actor.role is not Role.SERVER:
                    await self._ask_pre_terminate(info)
                await service.store.terminate(upload_id, held.fence)
        except UploadNotFound:
            if actor.role is not Role.SERVER:
                raise not_found() from None
            return None
        except TusError as exc:
            if exc.status == 404 and actor.role is Role.SERVER:
                return None  # gone meanwhile: nothing left for the policy to do
            raise
        self._owners.forget(upload_id)
        await service.lifecycle.terminated(info)
        return info

    async def _ask_pre_terminate(self, info: UploadInfo) -> None:
        hooks = self.service.hooks
        if hooks is None or not hooks.wants(HookType.PRE_TERMINATE):
            return
        rejection = await hooks.run_pre_terminate(self.service.pre_event(HookType.PRE_TERMINATE, info))
        if rejection is not None:
            raise TusError(rejection.status, rejection.message, code=ErrorCode.HOOK_REJECTED)

    # -- concatenate ----------------------------------------------------------------------------
    async def concatenate(
        self,
        actor: Actor,
        partial_ids: Sequence[str],
        metadata: dict[str, bytes | None],
        *,
        has_body: bool,
        new_id: str,
    ) -> UploadInfo:
        """A final upload made of ``actor``'s partial uploads, assembled as soon as they are all in.

        Its known length is reserved at creation like any upload's; a length that is known only at
        assembly (a deferred partial) is reserved then, before a byte is copied."""
        self.require(actor, Op.CONCATENATE)
        if has_body:
            raise bad_request("a final upload takes no body: its bytes are its partials'; send them to a partial")
        partials: list[UploadInfo] = []
        for partial_id in partial_ids:
            try:
                partial = await self.visible(actor, partial_id)
            except TusError as exc:
                if exc.status == 404:
                    raise not_found(f"partial upload {partial_id} not found") from None
                raise
            if partial.concat != "partial":
                raise bad_request(f"upload {partial_id} is not a partial upload (made with Upload-Concat: partial)")
            partials.append(partial)
        unfinished = [p.id for p in partials if not upload_state.is_complete(p)]
        self.require(actor, Op.CONCATENATE, unfinished_partials=bool(unfinished))
        lengths = [p.length for p in partials]
        known = sum(n for n in lengths if n is not None)
        max_size = self.service.config.max_size
        if max_size is not None and known > max_size:
            raise too_large(f"the partial uploads add up to {known} bytes, above the maximum of {max_size}")
        self._count_creation(actor)
        final = UploadInfo(
            id=new_id,
            length=known if None not in lengths else None,
            metadata=metadata,
            owner=actor.user_id,
            concat="final",
            partials=[p.id for p in partials],
        )
        final = await self.service.create(final)
        self._owners.remember(final)
        with _refused_commits():
            for ext in self.service.extensions:
                await ext.on_final_created(self.service, final)
        return await self.service.store.get_info(final.id)

    # -- recovery -------------------------------------------------------------------------------
    async def recover(self) -> int:
        """At start-up: finish uploads whose last byte landed before a crash but were never
        finished, and let extensions rebuild their state (e.g. finals waiting for partials)."""
        return await self.service.recover()

    async def record_lost_finishes(self, pipeline: Pipeline, page: int = 500) -> int:
        """At start-up: announce finishes that storage recorded but the pipeline never heard of.

        Storage and the state store are two commits: a process killed between ``store.finish``
        and the pipeline's ``uploaded`` record left a finished upload whose recording still says
        ``uploading``, which nothing would ever process (a resumed client finds it complete and
        stops). Only recordings not yet uploaded are read: as many as uploads in flight."""
        count, after = 0, ""
        while True:
            ids = await pipeline.not_yet_uploaded(after, page)
            for upload_id in ids:
                try:
                    info = await self.service.store.get_info(upload_id)
                except UploadNotFound:
                    continue
                if upload_state.announces_finish(info) and (info.finished_at or 0) < self.started_at:
                    await self.service.lifecycle.finished(info)
                    count += 1
            if len(ids) < page:
                return count
            after = ids[-1]
