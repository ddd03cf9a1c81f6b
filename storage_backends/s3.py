"""S3 backend: one tus upload is one S3 multipart upload, its state one small info object.

Objects of upload ``ID`` (under the configured prefix):

- ``ID``: the data, built by a multipart upload and readable once completed; an upload that
  completes below one part (a voice memo sent in one PATCH, or in a few short ones) never creates
  a multipart upload: its bytes are put as this object in one PutObject;
- ``ID.info``: the :class:`UploadInfo` (msgspec JSON) with the part ledger in ``backend_state``;
- ``ID.part.<offset>``: tail segments, bytes that do not fill a part yet (S3 parts are >= 5 MiB).

Commit point: the info object. Every write first puts bytes in S3 (parts, a tail segment), then
writes the info object that records them in one PUT, then deletes what that PUT superseded. A
crash between any two calls leaves either the old info (the new parts and segment are orphans:
the retried write reuses their part numbers and segment key, so it overwrites them) or the new
one (superseded segments are swept later). The offset is computed from the info object alone, so
it is always bytes durably in S3, and HEAD costs one GET (none for the prefix's only writer,
which keeps the info objects it wrote: s3_info_cache.py).

Request budgets (tests/s3/test_s3_budgets.py): create = 1 PUT (info); get_info = 1 GET; a PATCH
of whole parts = one UploadPart per part + 1 PUT (the first one due also creates the multipart
upload and records it: +2); a PATCH that completes an upload below one part = 1 PUT (the data
object) + 1 PUT (info); a PATCH below a part = 1 PUT (segment) + 1 PUT (info); promoting a
tail costs one DeleteObjects, plus one GET per segment this process did not write itself
(s3_tail_cache.py); finish = CompleteMultipartUpload + 1 PUT
(it trusts the ledger of the info the core hands it). ListParts is never needed: the ledger is
the source of truth, and CompleteMultipartUpload checks its ETags.

Fencing (a shared lock, ``--redis-url``; see fencing.py): a write checks its fence when it starts,
before every part, before a tail segment and before the info PUT, so a holder that lost its lease
neither records a ledger nor replaces the parts or segment of the holder after it (same numbers,
same keys). Unfenced writes make none of these calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import msgspec
import structlog

from storage_backends.base import CAP_CONCATENATION, CAP_DEFER_LENGTH, CAP_EXPIRATION, CAP_TERMINATION, DataStore
from storage_backends.s3_budget import ByteBudget
from storage_backends.s3_config import S3Config
from storage_backends.s3_errors import translate
from storage_backends.s3_info_cache import InfoCache, InfoVersions, NoInfoCache
from storage_backends.s3_ledger import (
    Part,
    S3State,
    Segment,
    advance,
    choose_part_size,
    durable_offset,
    segment_starts,
    tail_total,
)
from storage_backends.s3_objects import INFO_SUFFIX, Body, MultipartGone, S3Objects, body_size, part_buffer
from storage_backends.s3_parts import PartWriter
from storage_backends.s3_tail_cache import TailCache
from tusd_py.model.fencing import NO_FENCE, Fence, FenceLost, confirm
from tusd_py.model.storage_errors import StorageError, StorageUnavailable, UploadNotFound
from tusd_py.model.upload import UPLOAD_ID, BodyEnded, UploadInfo
from tusd_py.protocol.download import download_headers

log = structlog.get_logger(__name__)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(UploadInfo)


@dataclass
class WholeObject:
    """Whether the write in progress puts its one and only part as the data object itself."""

    chosen: bool = False


class S3Store(DataStore):
    capabilities = frozenset({CAP_TERMINATION, CAP_DEFER_LENGTH, CAP_CONCATENATION, CAP_EXPIRATION})

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.objects = S3Objects(config)
        #: Every part buffer of every concurrent write of this store is reserved here (s3_budget.py).
        self.budget = ByteBudget(config.part_size * config.part_concurrency)
        #: Bytes of the tail segments this process wrote, so promoting a tail GETs nothing back.
        self.tail_cache = TailCache()
        #: The info objects this process wrote, when it is the only writer (s3_info_cache.py).
        self.info_cache = InfoCache() if config.sole_writer else NoInfoCache()
        #: The ETag of each info object as this process last read or wrote it: the If-Match of its next PUT.
        self.info_versions = InfoVersions()

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Refuse to start on bad credentials or a missing bucket, with a message an operator can act on."""
        try:
            await self.objects.head_bucket()
        except Exception as exc:
            error = translate(exc, f"checking bucket {self.config.bucket!r}")
            status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                error = StorageError(f"S3 bucket {self.config.bucket!r} does not exist")
            elif status in (401, 403):
                error = StorageError(
                    f"S3 refused access to bucket {self.config.bucket!r} (HTTP {status}): "
                    "check the credentials and their permissions"
                )
            raise StorageError(f"S3 storage not usable: {error}") from exc

    async def close(self) -> None:
        await self.objects.close()

    # -- info ----------------------------------------------------------------------------------
    async def load(self, upload_id: str) -> tuple[UploadInfo, S3State]:
        """The stored info (offset from its ledger) and its S3 state: one GET (none when this
        process is the only writer and wrote it)."""
        info, state, _ = await self._load_version(upload_id)
        return info, state

    async def _load_version(self, upload_id: str) -> tuple[UploadInfo, S3State, str | None]:
        """:meth:`load`, and the ETag of the version read (None if unknown)."""
        raw, etag = self.info_cache.get(upload_id), self.info_versions.get(upload_id)
        if raw is None:
            writes_before = self.info_cache.writes
            raw, etag = await self.objects.get_with_etag(self.objects.info_key(upload_id))
            self.info_cache.fill(upload_id, raw, writes_before=writes_before)
            self.info_versions.seen(upload_id, etag)
        try:
            info = _decoder.decode(raw)
            state = msgspec.convert(info.backend_state, S3State)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise StorageError(f"info object of upload {upload_id} is unreadable: {exc}") from exc
        info.offset = durable_offset(state)
        return info, state, etag or None

    async def record_digest(self, upload_id: str, sha256: str) -> bool:
        """Without the upload's lock (see DataStore.record_digest): one PUT of the info object
        If-Match the version just read (from S3, or this sole writer's own last PUT), so it lands
        only over that finished upload's info object, unchanged: a termination or any other write
        meanwhile makes S3 refuse it (412), and the locked path decides."""
        try:
            info, state, etag = await self._load_version(upload_id)
        except UploadNotFound:
            return True
        if info.finished_at is None or not state.completed or etag is None:
            return False
        if info.sha256 != sha256:
            info.sha256 = sha256
            try:
                await self._put_info(upload_id, _encoder.encode(info), over=etag)
            except FenceLost:
                return False
        return True

    async def commit(self, info: UploadInfo, state: S3State) -> None:
        """The commit point: one PUT of the info object records the ledger and every other field.

        ``info`` takes the new ledger only once the PUT succeeded, so a caller holding it never
        sees bytes that are not recorded."""
        committed = msgspec.structs.replace(
            info,
            backend_state=msgspec.to_builtins(state),
            offset=durable_offset(state),
            # Expiration counts from the last activity; the filesystem backend uses the file's mtime.
            updated_at=max(info.updated_at, time.time()),
        )
        await self._put_info(info.id, _encoder.encode(committed))
        info.backend_state, info.offset = committed.backend_state, committed.offset
        info.updated_at = committed.updated_at

    @staticmethod
    def _state_of(info: UploadInfo) -> S3State | None:
        if not info.backend_state:
            return None
        try:
            return msgspec.convert(info.backend_state, S3State)
        except msgspec.ValidationError:
            return None

    async def create(self, info: UploadInfo) -> None:
        """One PUT: the info object. The multipart upload waits until a part is due, so a voice
        memo that arrives below one part never pays for one (see ensure_multipart)."""
        part_size = choose_part_size(
            self.config.part_size, info.length if info.length is not None else self.config.max_upload_size
        )
        state = S3State(part_size=part_size)
        info.backend_state = msgspec.to_builtins(state)
        info.offset = 0
        # If-None-Match: an id collision must never take over another upload's state.
        await self._put_info(info.id, _encoder.encode(info), if_none_match=True)
        log.info("s3 upload created", upload_id=info.id, part_size=part_size)

    async def _put_info(
        self, upload_id: str, encoded: bytes, *, if_none_match: bool = False, over: str | None = None
    ) -> None:
        # Dropped first: a PUT that fails may still have landed, so only a success is kept.
        self.info_cache.discard(upload_id)
        # Conditional on the version this process last read or wrote (If-Match), or on ``over``:
        # a writer whose lock was lost cannot bring back an info object another instance deleted,
        # nor roll back a newer holder's ledger, even if its fence check passed just before a long pause.
        remembered = None if if_none_match else self.info_versions.pop(upload_id)
        etag = await self.objects.put_bytes(
            self.objects.info_key(upload_id), encoded, if_none_match=if_none_match, if_match=over or remembered
        )
        self.info_versions.seen(upload_id, etag)
        self.info_cache.put(upload_id, encoded)

    async def ensure_multipart(self, info: UploadInfo, state: S3State, fence: Fence = NO_FENCE) -> None:
        """Create the upload's multipart upload (once) and record it at once: abort_abandoned
        aborts every multipart upload that no info object names, however long a PATCH runs."""
        if state.multipart_id:
            return
        download = self._object_headers(info)
        state.multipart_id = await self.objects.create_multipart(
            self.objects.data_key(info.id),
            content_type=download["Content-Type"],
            disposition=download["Content-Disposition"],
        )
        await self._fenced_commit(info, state, fence)

    @staticmethod
    def _object_headers(info: UploadInfo) -> dict[str, str]:
        # The values GET sends (a pure rule): raw client text in an object header could break
        # the header block, or make it too long for the client reading the object back.
        return download_headers(info.metadata)

    async def _put_whole_object(self, info: UploadInfo, body: Body) -> Part:
        """An upload that completes below one part: its bytes become the data object in one PUT."""
        download = self._object_headers(info)
        etag = await self.objects.put_bytes(
            self.objects.data_key(info.id),
            body,
            content_type=download["Content-Type"],
            disposition=download["Content-Disposition"],
        )
        return Part(body_size(body), etag)

    async def get_info(self, upload_id: str) -> UploadInfo:
        info, _ = await self.load(upload_id)
        return info

    async def update_info(self, info: UploadInfo, fence: Fence | None = None) -> None:
        """Persist the core's fields over the stored ledger (the caller's copy may be older)."""
        await confirm(fence)
        _, state = await self.load(info.id)
        if info.length is not None and not state.completed and durable_offset(state) == info.length and state.tail:
            # A deferred length just became known and every byte is in: the tail becomes the
            # last part now, so that any reader or finisher finds a complete ledger.
            state = await self._promote_tail(info, state)
            await confirm(fence)
        await self.commit(info, state)

    # -- writing -------------------------------------------------------------------------------
    async def write(
        self,
        info: UploadInfo,
        chunks: AsyncIterable[bytes],
        verify: Callable[[], None] | None = None,
        fence: Fence | None = None,
    ) -> int:
        fence = fence or NO_FENCE
        if fence.token:  # a holder that lost its lock must not even read the tail a newer one consumed
            await fence.check()
        # The core passes the info it loaded under the upload's lock, so its ledger is current:
        # trusting it keeps a PATCH at one UploadPart per part plus one info PUT.
        state = self._state_of(info)
        if state is None:
            info, state = await self.load(info.id)
        if state.completed:
            raise StorageError(f"upload {info.id} is already completed")
        key = self.objects.data_key(info.id)
        creating = asyncio.Lock()  # parts upload concurrently; the first one due creates the multipart upload
        whole = WholeObject()

        async def upload_part(number: int, body: Body) -> Part:
            # Fenced too: a stale holder's part would replace the new holder's part of the same
            # number (CompleteMultipartUpload would then refuse the ETag, and the upload could not complete).
            if fence.token:
                await fence.check()
            if whole.chosen:
                return await self._put_whole_object(info, body)
            async with creating:
                await self.ensure_multipart(info, state, fence)
            return await self.objects.upload_part(key, state.multipart_id, number, body)

        writer = PartWriter(
            part_size=state.part_size,
            first_number=len(state.parts) + 1,
            tail_size=tail_total(state),
            budget=self.budget,
            upload_part=upload_part,
            fetch_tail=lambda into: self._fetch_tail(info.id, state, into),
        )
        try:
            return await self._write(info, state, chunks, verify, writer, fence, whole)
        finally:
            writer.close()

    async def _write(
        self,
        info: UploadInfo,
        state: S3State,
        chunks: AsyncIterable[bytes],
        verify: Callable[[], None] | None,
        writer: PartWriter,
        fence: Fence,
        whole: WholeObject,
    ) -> int:
        start = durable_offset(state)
        stream_error: BodyEnded | None = None
        try:
            iterator = aiter(chunks)
            while True:
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
                except BodyEnded as exc:
                    stream_error = exc
                    break
                await writer.feed(chunk)
            if verify is not None and stream_error is None:
                verify()
        except BaseException as exc:
            # An S3 failure, a rejected checksum, or cancellation. With verify, nothing of this
            # call may be kept; without it, keep the parts that landed (but not the leftover).
            await self._settle_after_failure(info, state, writer, exc, keep=verify is None, fence=fence, whole=whole)
            raise
        if stream_error is not None and verify is not None:
            await writer.settle()  # discarded, but landed before the lock is released (see below)
            raise stream_error
        final = info.length is not None and start + writer.received == info.length
        try:
            if final:
                # Every byte of the upload is in this process and no part went out: one PutObject.
                whole.chosen = not state.multipart_id and not state.parts and writer.parts_emitted == 0
                await writer.flush_last_part()
            landed, failure = await writer.settle()
            if failure is not None:
                raise failure
            segment = None
            if not final and writer.leftover_size:
                if fence.token:  # a stale holder's segment would replace the new holder's (same key)
                    await fence.check()
                segment = await self._put_segment(info.id, start + writer.received - writer.leftover_size, writer)
            whole_object = whole.chosen and bool(landed)
            new_state = advance(state, landed, writer.tail_consumed, segment, whole_object=whole_object)
            await self._fenced_commit(info, new_state, fence)
        except BaseException as exc:
            await self._settle_after_failure(info, state, writer, exc, keep=verify is None, fence=fence, whole=whole)
            raise
        if writer.tail_consumed:
            await self._delete_segments(info.id, state)
        if stream_error is not None:
            raise stream_error
        return info.offset

    async def _fenced_commit(self, info: UploadInfo, state: S3State, fence: Fence) -> None:
        """The commit of a write: only while the lock service confirms this holder.

        What remains is a pause longer than the lease between the check and the PUT landing; the
        check renews the lease, so the PUT has the whole lease (a shared locker's lease is longer
        than an S3 request) before another holder can even start."""
        if fence.token:
            await fence.check()
        await self.commit(info, state)

    async def _put_segment(self, upload_id: str, at: int, writer: PartWriter) -> Segment:
        key = self.objects.segment_key(upload_id, at)
        async with writer.leftover() as body:
            etag = await self.objects.put_bytes(key, body)
            self.tail_cache.put(key, etag, bytes(body))
            return Segment(len(body), etag)

    async def _settle_after_failure(
        self,
        info: UploadInfo,
        state: S3State,
        writer: PartWriter,
        error: BaseException,
        *,
        keep: bool,
        fence: Fence = NO_FENCE,
        whole: WholeObject | None = None,
    ) -> None:
        """After a failed write: wait for the part uploads; if allowed, record the parts that
        landed in order, so the client resumes after them. Best effort: if S3 is down this PUT
        fails too and the offset simply stays where it was.

        Uploads are awaited, not cancelled (unless this task itself is being cancelled): a
        cancelled request may still land later and replace the part a newer lock holder uploads
        under the same number. (CompleteMultipartUpload would then refuse the ETag mismatch,
        so bytes are never wrong, but the upload could not complete.)"""
        if not isinstance(error, Exception):
            await writer.abandon()
            return
        landed, _ = await writer.settle()
        if not keep or not landed:
            return
        try:
            whole_object = whole is not None and whole.chosen
            new_state = advance(state, landed, writer.tail_consumed, None, whole_object=whole_object)
            await self._fenced_commit(info, new_state, fence)
        except (StorageError, ValueError) as exc:
            log.warning("s3 could not record parts after a failure", upload_id=info.id, error=str(exc))
            return
        if writer.tail_consumed:
            await self._delete_segments(info.id, state)

    async def _fetch_tail(self, upload_id: str, state: S3State, into: memoryview) -> None:
        """Copy the tail's segments, in order, into ``into`` (exactly the tail's size)."""
        if len(into) != tail_total(state):
            raise ValueError(f"the tail has {tail_total(state)} bytes, not {len(into)}")
        fetches = []
        position = 0
        for at, segment in zip(segment_starts(state), state.tail, strict=True):
            key, target = self.objects.segment_key(upload_id, at), into[position : position + segment.size]
            cached = self.tail_cache.get(key, segment.etag)
            if cached is not None and len(cached) == segment.size:
                target[:] = cached
            else:
                fetches.append(self.objects.get_into(key, target, if_match=segment.etag))
            position += segment.size
        await asyncio.gather(*fetches)

    async def _promote_tail(self, info: UploadInfo, state: S3State) -> S3State:
        """Upload the tail as the last part (used when the length becomes known late): as the
        whole data object when it is the upload's only part."""
        size = tail_total(state)
        whole_object = not state.parts and not state.multipart_id
        async with self.budget.hold(size):
            body = part_buffer(size)
            with body.getbuffer() as view:
                await self._fetch_tail(info.id, state, view)
            if whole_object:
                part = await self._put_whole_object(info, body)
            else:
                await self.ensure_multipart(info, state)
                part = await self.objects.upload_part(
                    self.objects.data_key(info.id), state.multipart_id, len(state.parts) + 1, body
                )
        return advance(state, [part], True, None, whole_object=whole_object)

    async def _delete_segments(self, upload_id: str, superseded: S3State) -> None:
        """Delete the tail segments of a superseded ledger; leftovers are swept later."""
        keys = [self.objects.segment_key(upload_id, at) for at in segment_starts(superseded)]
        self.tail_cache.discard(keys)
        if keys:
            await self._quietly(self.objects.delete_keys(keys))

    @staticmethod
    async def _quietly(call: Awaitable[object]) -> None:
        try:
            await call
        except (StorageError, UploadNotFound) as exc:
            log.warning("s3 cleanup failed; sweep_orphans will retry", error=str(exc))

    # -- completion ----------------------------------------------------------------------------
    async def complete_upload(self, upload_id: str, state: S3State) -> None:
        """CompleteMultipartUpload from the ledger; idempotent. S3 may answer NoSuchUpload to a
        second call: the upload is then complete if the object exists with the ledger's size."""
        key = self.objects.data_key(upload_id)
        parts = state.parts
        if not state.multipart_id:
            if parts:
                raise StorageError(f"upload {upload_id}: parts are recorded without a multipart upload")
            # A zero-byte upload (anything larger wrote its bytes as a part or a whole object).
            info = await self.get_info(upload_id)
            await self._put_whole_object(info, b"")
            return
        try:
            if not parts:  # a zero-byte upload: S3 needs at least one (empty) part
                parts = [await self.objects.upload_part(key, state.multipart_id, 1, b"")]
            await self.objects.complete_multipart(key, state.multipart_id, parts)
        except MultipartGone:
            size = await self.objects.head_size(key)
            if size != durable_offset(state):
                raise StorageError(
                    f"upload {upload_id}: the multipart upload is gone and the object has {size} bytes, "
                    f"not {durable_offset(state)}"
                ) from None

    async def finish(self, info: UploadInfo, fence: Fence | None = None) -> None:
        # The core passes the info it holds under the upload's lock (from get_info, or updated in
        # place by write's commit), so its ledger is current: one GET fewer. It is trusted only if
        # it holds every byte (never complete a truncated object); anything older could then only
        # repeat idempotent steps (the same tail bytes as the same part number; completing a
        # completed upload is checked by size).
        await confirm(fence)
        state = self._state_of(info)
        if state is None or info.length is None or durable_offset(state) != info.length:
            _, state = await self.load(info.id)
        if not state.completed and state.tail:
            state = await self._promote_tail(info, state)
            if not state.completed:
                # Recorded before completing: a retry after a crash must not upload it again.
                await self.commit(info, state)
        if not state.completed:
            await self.complete_upload(info.id, state)
            state.completed = True
        await confirm(fence)
        await self.commit(info, state)
        log.info("s3 upload completed", upload_id=info.id, parts=len(state.parts), size=durable_offset(state))

    # -- reading -------------------------------------------------------------------------------
    async def read(self, info: UploadInfo, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        state = self._state_of(info)
        if state is None or not state.completed:
            info, state = await self.load(info.id)
        if not state.completed:
            # S3 cannot read the parts of an unfinished multipart upload. The core reads a
            # finished upload before finish() when it must recompute the digest (after a
            # restart): complete it now (idempotent; finish() records it).
            if info.length is None or durable_offset(state) != info.length or state.tail:
                raise StorageError(f"upload {info.id} is not complete; S3 can only read completed uploads")
            await self.complete_upload(info.id, state)
        stop = durable_offset(state) if end is None else end
        if start >= stop:
            return
        async for block in self.objects.stream(self.objects.data_key(info.id), start, stop):
            yield block

    # -- termination ---------------------------------------------------------------------------
    def location(self, upload_id: str) -> dict[str, str]:
        return {"type": "s3", "bucket": self.objects.bucket, "key": self.objects.data_key(upload_id)}

    async def terminate(self, upload_id: str, fence: Fence | None = None) -> None:
        _, state = await self.load(upload_id)
        await confirm(fence)
        # The info object first: once it is gone the upload no longer exists for any instance;
        # anything after is cleanup that sweep_orphans finishes if we crash midway.
        self.info_cache.discard(upload_id)
        self.info_versions.pop(upload_id)
        await self.objects.delete_key(self.objects.info_key(upload_id))
        key = self.objects.data_key(upload_id)
        if state.multipart_id:
            await self._quietly(self.objects.abort_multipart(key, state.multipart_id))
        debris = [key]
        async for segment_key, _ in self.objects.list_keys(self.objects.segment_prefix(upload_id)):
            debris.append(segment_key)
        await self._quietly(self.objects.delete_keys(debris))
        log.info("s3 upload terminated", upload_id=upload_id)

    # -- listing and maintenance ---------------------------------------------------------------
    async def list_uploads(self) -> AsyncIterator[UploadInfo]:
        prefix = self.config.prefix
        async for key, _ in self.objects.list_keys(prefix):
            name = key[len(prefix) :]
            if not name.endswith(INFO_SUFFIX) or not UPLOAD_ID.fullmatch(name[: -len(INFO_SUFFIX)]):
                continue
            try:
                yield await self.get_info(name[: -len(INFO_SUFFIX)])
            except UploadNotFound:
                continue  # terminated while we listed
            except StorageUnavailable:
                raise
            except StorageError as exc:
                log.warning("s3 skipping an unreadable info object", key=key, error=str(exc))

    async def concatenate(self, final: UploadInfo, partials: list[UploadInfo], fence: Fence | None = None) -> None:
        from storage_backends.s3_concat import concatenate

        await confirm(fence)
        await concatenate(self, final, partials)

    async def sweep_orphans(self, older_than: float) -> int:
        from storage_backends.s3_sweep import sweep_orphans

        return await sweep_orphans(self, older_than)

    async def abort_abandoned(self, older_than: float) -> int:
        """Abort multipart uploads under the prefix, started before ``older_than``, that no info
        object refers to (a crash between CreateMultipartUpload and the first info PUT, or
        between deleting an info object and aborting its upload)."""
        from storage_backends.s3_sweep import abort_abandoned

        return await abort_abandoned(self, older_than)


__all__ = ["Part", "S3Config", "S3State", "S3Store"]
