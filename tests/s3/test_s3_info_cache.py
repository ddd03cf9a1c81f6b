"""The sole writer reads back its own info objects from memory; a miss, a failed PUT or a
termination always goes to S3 (storage_backends/s3_info_cache.py)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conformance.seaweed import SeaweedS3
from storage_backends.s3 import S3Store
from storage_backends.s3_info_cache import InfoCache
from tests.s3.conftest import make_config
from tests.s3.s3_support import S3Calls, chunks, payload, read_all
from tusd_py.model.storage_errors import StorageError, UploadNotFound
from tusd_py.model.upload import UploadInfo

pytestmark = pytest.mark.s3


def test_a_read_that_raced_a_write_is_not_kept_and_the_size_is_bounded() -> None:
    cache = InfoCache(entries=2)
    before = cache.writes
    cache.put("a", b"new")  # a commit landed while a GET of "a" was in flight
    cache.fill("a", b"old", writes_before=before)
    assert cache.get("a") == b"new"
    cache.discard("a")
    stale = cache.writes
    cache.fill("a", b"read", writes_before=stale)  # nothing written meanwhile: kept
    assert cache.get("a") == b"read"
    cache.put("b", b"b")
    cache.get("a")  # used: "b" is now the oldest
    cache.put("c", b"c")
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") == b"read"


@pytest.fixture
async def sole_store(seaweed: SeaweedS3) -> AsyncIterator[S3Store]:
    store = S3Store(make_config(seaweed, f"t-{secrets.token_hex(4)}/", sole_writer=True))
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_the_sole_writer_reads_its_info_from_memory(sole_store: S3Store) -> None:
    calls = await S3Calls().attach(sole_store)
    data = payload(4096, seed=21)
    await sole_store.create(UploadInfo(id="memo", length=len(data)))
    calls.reset()
    info = await sole_store.get_info("memo")
    assert info.offset == 0 and calls.total == 0  # HEAD and the start of a PATCH: no request
    info.offset = await sole_store.write(info, chunks(data, 1024))
    calls.reset()
    assert (await sole_store.get_info("memo")).offset == len(data) and calls.total == 0
    info.finished_at = time.time()
    await sole_store.finish(info)
    assert await read_all(sole_store, await sole_store.get_info("memo")) == data
    # A new process (empty memory) reads S3 once, then from memory.
    restarted = S3Store(sole_store.config)
    await restarted.start()
    try:
        cold = await S3Calls().attach(restarted)
        assert (await restarted.get_info("memo")).finished_at == info.finished_at
        assert cold.ops == {"GetObject": 1}
        await restarted.get_info("memo")
        assert cold.ops == {"GetObject": 1}
    finally:
        await restarted.close()
    calls.reset()
    await sole_store.terminate("memo")
    with pytest.raises(UploadNotFound):
        await sole_store.get_info("memo")


async def test_after_a_failed_info_put_the_next_read_goes_to_s3(sole_store: S3Store) -> None:
    await sole_store.create(UploadInfo(id="flaky", length=10))
    info = await sole_store.get_info("flaky")
    client = await sole_store.objects.client()

    def refuse_info_puts(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "PutObject" and str(params.get("url_path", "")).endswith(".info"):
            raise ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "P")

    client.meta.events.register("before-call.s3", refuse_info_puts)
    try:
        with pytest.raises(StorageError):
            await sole_store.write(info, chunks(b"12345", 5))
    finally:
        client.meta.events.unregister("before-call.s3", refuse_info_puts)
    calls = await S3Calls().attach(sole_store)
    assert (await sole_store.get_info("flaky")).offset == 0
    assert calls.ops == {"GetObject": 1}  # not the memory of a PUT that may or may not have landed
