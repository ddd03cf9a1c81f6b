"""Concatenation (tus ``concatenation`` extension) for the S3 backend.

The final upload's multipart upload is rebuilt from part 1 on every call, and recorded in one
info PUT at the end: a call interrupted by a crash leaves the old ledger (the parts it copied
are orphans that the retry overwrites, number by number), so a retry produces exactly the
concatenation, never a doubled prefix.

Server-side copy (UploadPartCopy, no bytes through this server) works when every partial but the
last is at least S3's 5 MiB minimum part size; otherwise the bytes are streamed through a
:class:`PartWriter` (bounded memory), since S3 cannot join small objects into one part.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from storage_backends.s3_ledger import Part, S3State, durable_offset, plan_copy
from storage_backends.s3_parts import PartWriter
from tusd_py.model.storage_errors import StorageError
from tusd_py.model.upload import UploadInfo

if TYPE_CHECKING:
    from storage_backends.s3 import S3Store

log = structlog.get_logger(__name__)


async def concatenate(store: S3Store, final: UploadInfo, partials: list[UploadInfo]) -> None:
    stored, state = await store.load(final.id)
    if state.completed:
        return  # assembled and completed by an earlier call
    await store.ensure_multipart(stored, state)
    objects = store.objects
    sources: list[tuple[str, int]] = []
    for partial in partials:
        info, partial_state = await store.load(partial.id)
        if not partial_state.completed:
            # Finished partials are completed by finish(); one that crashed before it is completed here.
            if info.length is None or durable_offset(partial_state) != info.length or partial_state.tail:
                raise StorageError(f"partial upload {partial.id} is not finished")
            await store.complete_upload(partial.id, partial_state)
        sources.append((objects.data_key(partial.id), durable_offset(partial_state)))
    key = objects.data_key(final.id)
    plan = plan_copy([size for _, size in sources])
    if plan is not None:
        slots = asyncio.Semaphore(store.config.part_concurrency)

        async def copy(number: int, source: str, start: int, end: int) -> Part:
            async with slots:
                return await objects.copy_part(key, state.multipart_id, number, source, start, end)

        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(copy(number, sources[item.source][0], item.start, item.end))
                for number, item in enumerate(plan, start=1)
            ]
        parts = [task.result() for task in tasks]
        how = "copy"
    else:
        parts = await _stream(store, key, state, sources)
        how = "stream"
    assembled = S3State(multipart_id=state.multipart_id, part_size=state.part_size, parts=parts)
    stored.length = final.length if final.length is not None else durable_offset(assembled)
    await store.commit(stored, assembled)
    final.backend_state, final.offset = stored.backend_state, stored.offset
    log.info("s3 concatenated", upload_id=final.id, partials=len(partials), parts=len(parts), how=how)


async def _stream(store: S3Store, key: str, state: S3State, sources: list[tuple[str, int]]) -> list[Part]:
    objects = store.objects
    writer = PartWriter(
        part_size=state.part_size,
        first_number=1,
        tail_size=0,
        budget=store.budget,
        upload_part=lambda number, body: objects.upload_part(key, state.multipart_id, number, body),
        fetch_tail=_no_tail,
    )
    try:
        for source, size in sources:
            if size == 0:
                continue
            async for block in objects.stream(source, 0, size):
                await writer.feed(block)
        await writer.flush_last_part()
    except BaseException:
        await writer.abandon()
        raise
    finally:
        writer.close()
    parts, failure = await writer.settle()
    if failure is not None:
        raise failure
    return parts


async def _no_tail(into: memoryview) -> None:
    if len(into):
        raise StorageError("a concatenation has no tail")
