"""S3 requests per operation, counted on the real client (botocore ``before-call`` events).

The issue's budgets: HEAD (get_info) at most one S3 request; a PATCH of whole parts one
UploadPart per part plus one info write; ListParts never on the request path. A budget is an upper
bound per operation (an operation it does not name is over budget), so doing with fewer requests
passes; a step that must reach S3 (it stores, reads or deletes bytes) still has to make one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from storage_backends.s3 import S3Store
from storage_backends.s3_config import S3Config
from storage_backends.s3_ledger import MIB
from storage_backends.s3_tail_cache import TailCache
from tests.s3.s3_support import S3Calls, chunks, payload, read_all
from tusd_py.model.upload import UploadInfo

pytestmark = pytest.mark.s3


# Each step's most requests per operation; None: measured and printed, not held to a budget.
BUDGETS: dict[str, dict[str, int] | None] = {
    # The multipart upload waits for the first part that is due.
    "create": {"PutObject": 1},
    "get_info": {"GetObject": 1},
    # The first part due creates the multipart upload and records it (an info PUT) at once.
    "write 2 whole parts": {"CreateMultipartUpload": 1, "UploadPart": 2, "PutObject": 2},
    "write 1 MiB (tail segment)": {"PutObject": 2},
    "write 1 MiB (tail segment) #2": None,
    # The segments' bytes come from this process's tail cache: nothing is read back.
    "write promoting a 2-segment tail": {"UploadPart": 1, "PutObject": 1, "DeleteObjects": 1},
    # The last (short) part goes straight into the multipart upload.
    "write last short part": {"UploadPart": 1, "PutObject": 1},
    # finish trusts the ledger of the info the core hands it (just loaded under the lock).
    "finish": {"CompleteMultipartUpload": 1, "PutObject": 1},
    "read range (finished)": {"GetObject": 1},
    "terminate": {"GetObject": 1, "DeleteObject": 1, "AbortMultipartUpload": 1, "ListObjectsV2": 1, "DeleteObjects": 1},
    # A voice memo below one part, in one PATCH: no multipart upload at all.
    "small: create": {"PutObject": 1},
    "small: write all of it": {"PutObject": 2},
    "small: finish": {"PutObject": 1},
    "small: read": {"GetObject": 1},
    # The same in three short PATCHes: the last one puts tail + rest as the data object.
    "short PATCHes: write the last one": {"PutObject": 2, "DeleteObjects": 1},
    "short PATCHes: finish": {"PutObject": 1},
    "small: terminate": {"GetObject": 1, "DeleteObject": 1, "ListObjectsV2": 1, "DeleteObjects": 1},
}
# Steps that could cost no request at all (the info may come from memory); every other step
# stores, reads or deletes bytes in S3.
MAY_BE_FREE = {"get_info"}
_measured: dict[str, dict[str, int]] = {}


async def measure_one_upload(store: S3Store) -> dict[str, dict[str, int]]:
    """One upload's life, step by step, with the S3 requests each step made."""
    calls = await S3Calls().attach(store)
    size = 16 * MIB + 5
    data = payload(size)
    measured: dict[str, dict[str, int]] = {}

    def take(name: str) -> None:
        measured[name] = dict(calls.ops)
        calls.reset()

    await store.create(UploadInfo(id="budget", length=size))
    take("create")
    info = await store.get_info("budget")
    take("get_info")
    info.offset = await store.write(info, chunks(data[: 10 * MIB], 256 * 1024))
    take("write 2 whole parts")
    info.offset = await store.write(info, chunks(data[10 * MIB : 11 * MIB], 256 * 1024))
    take("write 1 MiB (tail segment)")
    info.offset = await store.write(info, chunks(data[11 * MIB : 12 * MIB], 256 * 1024))
    take("write 1 MiB (tail segment) #2")
    info.offset = await store.write(info, chunks(data[12 * MIB : 15 * MIB], 256 * 1024))
    take("write promoting a 2-segment tail")
    info.offset = await store.write(info, chunks(data[15 * MIB :], 256 * 1024))
    take("write last short part")
    info = await store.get_info("budget")
    calls.reset()
    info.finished_at, info.sha256 = time.time(), "ab" * 32
    await store.finish(info)
    take("finish")
    info = await store.get_info("budget")
    calls.reset()
    assert await read_all(store, info, 100, 200) == data[100:200]
    take("read range (finished)")
    await store.terminate("budget")
    take("terminate")
    await measure_small_uploads(store, calls, take)
    return measured


async def measure_small_uploads(store: S3Store, calls: S3Calls, take: Callable[[str], None]) -> None:
    small = payload(4096, seed=3)
    await store.create(UploadInfo(id="memo", length=len(small), metadata={"filetype": b"audio/mp4"}))
    take("small: create")
    info = await store.get_info("memo")
    calls.reset()
    info.offset = await store.write(info, chunks(small, 1024))
    take("small: write all of it")
    info.finished_at, info.sha256 = time.time(), "cd" * 32
    await store.finish(info)
    take("small: finish")
    info = await store.get_info("memo")
    calls.reset()
    assert await read_all(store, info, 0, len(small)) == small
    take("small: read")
    stored = await store.objects.head_size(store.objects.data_key("memo"))
    assert stored == len(small)
    short = payload(3 * MIB, seed=4)
    await store.create(UploadInfo(id="short", length=len(short)))
    info = await store.get_info("short")
    for start in (0, MIB):
        info.offset = await store.write(info, chunks(short[start : start + MIB], 256 * 1024))
    calls.reset()
    info.offset = await store.write(info, chunks(short[2 * MIB :], 256 * 1024))
    take("short PATCHes: write the last one")
    info.finished_at = time.time()
    await store.finish(info)
    take("short PATCHes: finish")
    assert await read_all(store, await store.get_info("short"), 0, len(short)) == short
    calls.reset()
    await store.terminate("memo")
    take("small: terminate")
    await store.terminate("short")


@pytest.mark.parametrize("step", list(BUDGETS))
async def test_request_budget(s3_store: S3Store, step: str) -> None:
    """Every step reports on its own; the upload's life is measured once, by the first of them."""
    if not _measured:
        _measured.update(await measure_one_upload(s3_store))
        for name, ops in _measured.items():
            print(f"{name}: {sum(ops.values())} requests {ops}")
    ops = _measured[step]
    assert "ListParts" not in ops
    budget = BUDGETS[step]
    if budget is not None:
        over = {op: count for op, count in ops.items() if count > budget.get(op, 0)}
        assert over == {}, f"{step}: {ops} is over its budget {budget}"
    if step not in MAY_BE_FREE:
        assert sum(ops.values()) > 0, f"{step} made no S3 request"


async def test_a_tail_written_by_another_process_is_read_back(s3_store: S3Store, s3_config: S3Config) -> None:
    """The tail cache is only a shortcut: a new process (or a key rewritten since) reads S3."""
    size = 6 * MIB
    data = payload(size, seed=7)
    await s3_store.create(UploadInfo(id="cold", length=size))
    info = await s3_store.get_info("cold")
    info.offset = await s3_store.write(info, chunks(data[:MIB], 256 * 1024))
    info.offset = await s3_store.write(info, chunks(data[MIB : 2 * MIB], 256 * 1024))
    restarted = S3Store(s3_config)
    await restarted.start()
    try:
        calls = await S3Calls().attach(restarted)
        # A cached entry whose ETag is not the ledger's (bytes someone else wrote) is ignored.
        restarted.tail_cache.put(restarted.objects.segment_key("cold", 0), '"not-the-etag"', b"x" * MIB)
        info = await restarted.get_info("cold")
        calls.reset()
        info.offset = await restarted.write(info, chunks(data[2 * MIB :], 256 * 1024))
        assert calls.ops["GetObject"] == 2  # both segments, from S3
        info = await restarted.get_info("cold")
        assert info.offset == size
        info.finished_at = time.time()
        await restarted.finish(info)
        assert await read_all(restarted, await restarted.get_info("cold"), 0, size) == data
    finally:
        await restarted.close()


def test_tail_cache_is_bounded_and_keyed_by_etag() -> None:
    cache = TailCache(max_bytes=10)
    cache.put("a", "e1", b"12345")
    cache.put("b", "e2", b"678")
    assert cache.get("a", "e1") == b"12345" and cache.get("a", "other") is None
    cache.put("c", "e3", b"9999")  # 12 bytes > 10: the oldest entry goes
    assert cache.get("a", "e1") is None and cache.get("b", "e2") == b"678" and cache.size == 7
    cache.put("huge", "e4", b"x" * 11)  # larger than the whole cache: not kept
    assert cache.get("huge", "e4") is None
    cache.discard(["b", "missing"])
    assert cache.get("b", "e2") is None and cache.size == 4
