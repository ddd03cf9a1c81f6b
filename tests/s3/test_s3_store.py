"""The S3 backend against a real S3 server (SeaweedFS): round trips, tails, failures of the
client stream, verification, termination, concatenation and the orphan sweep."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest

from conformance.seaweed import SeaweedS3
from storage_backends.s3 import S3Store
from storage_backends.s3_ledger import MIB
from storage_backends.s3_objects import part_buffer
from tests.s3.s3_support import S3Calls, chunks, payload, read_all
from tusd_py.model.storage_errors import StorageError, UploadNotFound, VerificationFailed
from tusd_py.model.upload import BodyEnded, UploadInfo
from tusd_py.protocol.upload_state import is_complete

pytestmark = pytest.mark.s3


def keys_under(server: SeaweedS3, prefix: str) -> list[str]:
    client: Any = server.client()
    return [item["Key"] for item in client.list_objects_v2(Bucket=server.bucket, Prefix=prefix).get("Contents", [])]


def multipart_under(server: SeaweedS3, prefix: str) -> list[str]:
    client: Any = server.client()
    return [
        item["Key"] for item in client.list_multipart_uploads(Bucket=server.bucket, Prefix=prefix).get("Uploads", [])
    ]


async def finish(store: S3Store, upload_id: str) -> UploadInfo:
    info = await store.get_info(upload_id)
    assert is_complete(info)
    info.finished_at, info.sha256 = time.time(), "00" * 32
    await store.finish(info)
    return await store.get_info(upload_id)


async def test_round_trip_with_ranges_and_headers(s3_store: S3Store, seaweed: SeaweedS3) -> None:
    data = payload(11 * MIB + 123)
    metadata: dict[str, bytes | None] = {"filetype": b"audio/mpeg", "filename": "Søng.mp3".encode()}
    await s3_store.create(UploadInfo(id="round", length=len(data), metadata=metadata))
    info = await s3_store.get_info("round")
    assert (info.offset, info.length, info.metadata) == (0, len(data), metadata)
    info.offset = await s3_store.write(info, chunks(data, 100_000))
    assert info.offset == len(data)
    done = await finish(s3_store, "round")
    assert done.offset == len(data) and done.sha256 == "00" * 32 and done.finished_at is not None
    assert await read_all(s3_store, done) == data
    for start, end in [(0, 1), (5 * MIB - 1, 5 * MIB + 1), (len(data) - 7, len(data)), (3, 3)]:
        assert await read_all(s3_store, done, start, end) == data[start:end]
    head: Any = seaweed.client().head_object(Bucket=seaweed.bucket, Key=s3_store.objects.data_key("round"))  # type: ignore[attr-defined]
    assert head["ContentType"] == "audio/mpeg"
    assert "filename*=UTF-8''S%C3%B8ng.mp3" in head["ContentDisposition"]
    # finish is idempotent: a second call after a crash changes nothing.
    await s3_store.finish(done)
    assert await read_all(s3_store, await s3_store.get_info("round")) == data


async def test_unknown_upload_and_duplicate_id(s3_store: S3Store) -> None:
    with pytest.raises(UploadNotFound):
        await s3_store.get_info("nope")
    with pytest.raises(UploadNotFound):
        await s3_store.get_info("../escape")
    with pytest.raises(UploadNotFound):
        await s3_store.terminate("nope")
    await s3_store.create(UploadInfo(id="dup", length=10))
    with pytest.raises(StorageError):
        await s3_store.create(UploadInfo(id="dup", length=20))
    assert (await s3_store.get_info("dup")).length == 10


async def test_zero_length_upload(s3_store: S3Store) -> None:
    await s3_store.create(UploadInfo(id="empty", length=0))
    done = await finish(s3_store, "empty")
    assert await read_all(s3_store, done) == b""


async def test_deferred_length_declared_after_the_last_byte(s3_store: S3Store) -> None:
    data = payload(7 * MIB + 5)
    await s3_store.create(UploadInfo(id="defer", length=None))
    info = await s3_store.get_info("defer")
    info.offset = await s3_store.write(info, chunks(data[: 6 * MIB], MIB))
    info = await s3_store.get_info("defer")
    info.offset = await s3_store.write(info, chunks(data[6 * MIB :], MIB))
    info = await s3_store.get_info("defer")
    assert info.offset == len(data) and info.length is None and not is_complete(info)
    info.length = len(data)
    await s3_store.update_info(info)  # the tail becomes the last part here
    done = await finish(s3_store, "defer")
    assert await read_all(s3_store, done) == data


async def test_phone_sized_chunks_send_each_byte_at_most_twice(s3_store: S3Store) -> None:
    """1 MiB PATCHes, 5 MiB parts: tails are kept in S3 and promoted once, never re-sent growing."""
    size = 13 * MIB + 77
    data = payload(size, seed=7)
    await s3_store.create(UploadInfo(id="phone", length=size))
    calls = await S3Calls().attach(s3_store)
    patches = 0
    for start in range(0, size, MIB):
        info = await s3_store.get_info("phone")  # what the core does: HEAD/load, then PATCH
        assert info.offset == start
        info.offset = await s3_store.write(info, chunks(data[start : start + MIB], 64 * 1024))
        patches += 1
    assert calls.data_bytes <= 2 * size, calls.data_bytes
    assert calls.data_bytes >= size
    done = await finish(s3_store, "phone")
    assert await read_all(s3_store, done) == data
    assert not [key for key in keys_under_store(s3_store) if ".part." in key]
    print(f"phone: {patches} PATCHes, {calls.data_bytes / size:.2f}x data bytes, ops={dict(calls.ops)}")


def keys_under_store(store: S3Store) -> list[str]:
    import boto3

    cfg = store.config
    client: Any = boto3.client(
        "s3",
        endpoint_url=cfg.endpoint_url,
        region_name=cfg.region,
        aws_access_key_id=cfg.access_key_id,
        aws_secret_access_key=cfg.secret_access_key,
    )
    return [item["Key"] for item in client.list_objects_v2(Bucket=cfg.bucket, Prefix=cfg.prefix).get("Contents", [])]


async def test_broken_stream_keeps_what_arrived(s3_store: S3Store) -> None:
    data = payload(12 * MIB, seed=3)
    await s3_store.create(UploadInfo(id="cut", length=len(data)))
    info = await s3_store.get_info("cut")
    cut = 7_700_000  # a whole part, and a tail that must be kept too (a multiple of the chunk size)
    with pytest.raises(BodyEnded):
        await s3_store.write(info, chunks(data, 100_000, fail_after=cut))
    info = await s3_store.get_info("cut")
    assert info.offset == cut
    info.offset = await s3_store.write(info, chunks(data[info.offset :], 100_000))
    done = await finish(s3_store, "cut")
    assert await read_all(s3_store, done) == data


async def test_verified_write_is_all_or_nothing(s3_store: S3Store) -> None:
    data = payload(13 * MIB, seed=4)
    await s3_store.create(UploadInfo(id="ver", length=len(data)))
    info = await s3_store.get_info("ver")
    info.offset = await s3_store.write(info, chunks(data[: 2 * MIB], MIB), verify=lambda: None)
    assert info.offset == 2 * MIB

    def reject() -> None:
        raise VerificationFailed("checksum mismatch")

    # A rejected checksum: parts were uploaded (and the tail promoted into one), none is kept.
    with pytest.raises(VerificationFailed):
        await s3_store.write(info, chunks(b"x" * (9 * MIB), MIB), verify=reject)
    assert (await s3_store.get_info("ver")).offset == 2 * MIB
    # A broken stream under verify keeps nothing either.
    with pytest.raises(BodyEnded):
        await s3_store.write(info, chunks(b"y" * (9 * MIB), MIB, fail_after=8 * MIB), verify=lambda: None)
    info = await s3_store.get_info("ver")
    assert info.offset == 2 * MIB
    # The orphans of both attempts are overwritten: the upload ends byte-identical.
    info.offset = await s3_store.write(info, chunks(data[2 * MIB :], MIB), verify=lambda: None)
    done = await finish(s3_store, "ver")
    assert await read_all(s3_store, done) == data


async def test_terminate_removes_everything(s3_store: S3Store, seaweed: SeaweedS3) -> None:
    data = payload(6 * MIB + 10)
    await s3_store.create(UploadInfo(id="gone", length=20 * MIB))
    info = await s3_store.get_info("gone")
    await s3_store.write(info, chunks(data, MIB))  # a part and a tail segment
    prefix = s3_store.config.prefix
    assert len(keys_under(seaweed, prefix)) == 2 and multipart_under(seaweed, prefix)
    await s3_store.terminate("gone")
    with pytest.raises(UploadNotFound):
        await s3_store.get_info("gone")
    assert keys_under(seaweed, prefix) == []
    assert multipart_under(seaweed, prefix) == []
    # A finished upload's object goes too.
    await s3_store.create(UploadInfo(id="done", length=3))
    info = await s3_store.get_info("done")
    await s3_store.write(info, chunks(b"abc", 3))
    await finish(s3_store, "done")
    await s3_store.terminate("done")
    assert keys_under(seaweed, prefix) == []


async def test_an_upload_below_one_part_is_one_object_and_never_a_multipart_upload(
    s3_store: S3Store, seaweed: SeaweedS3
) -> None:
    prefix = s3_store.config.prefix
    memo = payload(300 * 1024, seed=12)
    metadata = {"filename": b"memo.m4a", "filetype": b"audio/mp4"}
    await s3_store.create(UploadInfo(id="memo", length=len(memo), metadata=metadata))
    info = await s3_store.get_info("memo")
    info.offset = await s3_store.write(info, chunks(memo[:100_000], 32 * 1024))  # cut short: a tail segment
    info = await s3_store.get_info("memo")
    info.offset = await s3_store.write(info, chunks(memo[100_000:], 32 * 1024))
    assert multipart_under(seaweed, prefix) == []
    # The upload is complete the moment its last byte is recorded, before finish().
    stored = await s3_store.get_info("memo")
    assert stored.offset == len(memo) and stored.backend_state["completed"] is True
    assert await read_all(s3_store, stored, 1000, 2000) == memo[1000:2000]
    done = await finish(s3_store, "memo")
    assert await read_all(s3_store, done) == memo
    assert sorted(keys_under(seaweed, prefix)) == [prefix + "memo", s3_store.objects.info_key("memo")]
    client: Any = seaweed.client()
    head = client.head_object(Bucket=seaweed.bucket, Key=prefix + "memo")
    assert head["ContentType"] == "audio/mp4" and "memo.m4a" in head["ContentDisposition"]
    # A zero-byte upload is an empty object.
    await s3_store.create(UploadInfo(id="empty", length=0))
    assert await read_all(s3_store, await finish(s3_store, "empty")) == b""
    assert multipart_under(seaweed, prefix) == []
    # Above one part the multipart upload is created when the first part is due, and recorded at
    # once: the sweep, which aborts every multipart upload no info object names, leaves it alone.
    big = payload(6 * MIB, seed=13)
    await s3_store.create(UploadInfo(id="big", length=len(big)))
    info = await s3_store.get_info("big")
    info.offset = await s3_store.write(info, chunks(big[: 5 * MIB + 1], MIB))
    assert multipart_under(seaweed, prefix) == [prefix + "big"]
    await s3_store.sweep_orphans(time.time() + 1)
    info = await s3_store.get_info("big")
    info.offset = await s3_store.write(info, chunks(big[info.offset :], MIB))
    assert await read_all(s3_store, await finish(s3_store, "big")) == big


async def test_list_uploads(s3_store: S3Store) -> None:
    for name in ("b", "a", "c"):
        await s3_store.create(UploadInfo(id=name, length=5))
    info = await s3_store.get_info("b")
    await s3_store.write(info, chunks(b"12", 2))
    listed = {info.id: info.offset async for info in s3_store.list_uploads()}
    assert listed == {"a": 0, "b": 2, "c": 0}


async def _partials(store: S3Store, sizes: list[int]) -> tuple[list[UploadInfo], bytes]:
    infos: list[UploadInfo] = []
    whole = b""
    for index, size in enumerate(sizes):
        data = payload(size, seed=100 + index)
        whole += data
        await store.create(UploadInfo(id=f"p{index}", length=size, concat="partial"))
        info = await store.get_info(f"p{index}")
        await store.write(info, chunks(data, MIB))
        infos.append(await finish(store, f"p{index}"))
    return infos, whole


@pytest.mark.parametrize(
    ("sizes", "copied"),
    [([6 * MIB, 5 * MIB, 1 * MIB + 3], True), ([1 * MIB, 2 * MIB + 1, 6 * MIB, 0], False)],
    ids=["upload-part-copy", "streamed-fallback"],
)
async def test_concatenation(s3_store: S3Store, sizes: list[int], copied: bool) -> None:
    partials, whole = await _partials(s3_store, sizes)
    await s3_store.create(UploadInfo(id="final", length=len(whole), concat="final", partials=[p.id for p in partials]))
    calls = await S3Calls().attach(s3_store)
    final = await s3_store.get_info("final")
    await s3_store.concatenate(final, partials)
    assert (calls.ops["UploadPartCopy"] > 0) == copied
    assert (calls.ops["UploadPart"] > 0) == (not copied)
    assert calls.data_bytes == (0 if copied else len(whole))
    # Called again (as after a crash before finish): exactly the concatenation, no doubled prefix.
    await s3_store.concatenate(await s3_store.get_info("final"), partials)
    done = await finish(s3_store, "final")
    assert done.offset == len(whole)
    assert await read_all(s3_store, done) == whole


async def test_sweep_aborts_abandoned_multipart_uploads(s3_store: S3Store, seaweed: SeaweedS3) -> None:
    objects = s3_store.objects
    # A crash between CreateMultipartUpload and the first info PUT:
    await objects.create_multipart(objects.data_key("crashed"), content_type=None, disposition=None)
    # A crash in terminate after the info object was deleted (its upload and tail stay behind):
    await s3_store.create(UploadInfo(id="half", length=20 * MIB))
    info = await s3_store.get_info("half")
    await s3_store.write(info, chunks(payload(6 * MIB), MIB))
    await objects.delete_key(objects.info_key("half"))
    # A live upload, with a part and a tail, must survive the sweep untouched.
    live = payload(7 * MIB, seed=9)
    await s3_store.create(UploadInfo(id="live", length=len(live)))
    info = await s3_store.get_info("live")
    info.offset = await s3_store.write(info, chunks(live[: 6 * MIB], MIB))
    prefix = s3_store.config.prefix
    assert sorted(multipart_under(seaweed, prefix)) == [prefix + "crashed", prefix + "half", prefix + "live"]

    assert await s3_store.sweep_orphans(time.time() - 3600) == 0  # nothing old enough yet
    removed = await s3_store.sweep_orphans(time.time() + 1)
    assert removed == 3  # two multipart uploads, one tail segment
    assert multipart_under(seaweed, prefix) == [prefix + "live"]
    assert sorted(keys_under(seaweed, prefix)) == sorted(
        [objects.info_key("live"), objects.segment_key("live", 5 * MIB)]
    )
    info = await s3_store.get_info("live")
    info.offset = await s3_store.write(info, chunks(live[info.offset :], MIB))
    assert await read_all(s3_store, await finish(s3_store, "live")) == live


async def test_update_info_never_rolls_back_the_ledger(s3_store: S3Store) -> None:
    data = payload(6 * MIB)
    await s3_store.create(UploadInfo(id="meta", length=None))
    stale = await s3_store.get_info("meta")
    info = await s3_store.get_info("meta")
    before_write = time.time()
    await s3_store.write(info, chunks(data, MIB))
    assert (await s3_store.get_info("meta")).updated_at >= before_write  # expiration counts from here
    stale.metadata = {"filename": b"late.bin"}
    await s3_store.update_info(stale)  # an older copy of the info: its ledger must not win
    fresh = await s3_store.get_info("meta")
    assert fresh.offset == len(data) and fresh.metadata == {"filename": b"late.bin"}


async def test_all_bytes_in_but_not_finished_is_readable(s3_store: S3Store) -> None:
    """The core hashes an upload before finish() when its digest was lost (a restart): read()
    completes the multipart upload on demand, and finish() still works afterwards."""
    data = payload(5 * MIB + 17, seed=5)
    await s3_store.create(UploadInfo(id="early", length=len(data)))
    info = await s3_store.get_info("early")
    await s3_store.write(info, chunks(data, MIB))
    info = await s3_store.get_info("early")
    assert info.finished_at is None
    assert await read_all(s3_store, info) == data
    assert await read_all(s3_store, info, 5 * MIB, 5 * MIB + 17) == data[5 * MIB :]
    done = await finish(s3_store, "early")
    assert await read_all(s3_store, done) == data


async def test_unfinished_upload_is_not_readable(s3_store: S3Store) -> None:
    await s3_store.create(UploadInfo(id="half", length=10))
    info = await s3_store.get_info("half")
    await s3_store.write(info, chunks(b"12345", 5))
    with pytest.raises(StorageError):
        await read_all(s3_store, await s3_store.get_info("half"))


async def test_finish_after_s3_forgot_the_completed_multipart_upload(s3_store: S3Store) -> None:
    """AWS answers NoSuchUpload to a second CompleteMultipartUpload (SeaweedFS answers 200): the
    finish retried after a crash then checks the object instead."""
    from botocore.exceptions import ClientError

    data = payload(6 * MIB, seed=6)
    await s3_store.create(UploadInfo(id="twice", length=len(data)))
    info = await s3_store.get_info("twice")
    await s3_store.write(info, chunks(data, MIB))
    _, state = await s3_store.load("twice")
    await s3_store.complete_upload("twice", state)  # completed, but the crash lost the info PUT

    def no_such_upload(model: Any, **_: Any) -> None:
        if model.name == "CompleteMultipartUpload":
            raise ClientError({"Error": {"Code": "NoSuchUpload"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "C")

    client = await s3_store.objects.client()
    client.meta.events.register("before-call.s3", no_such_upload)
    try:
        done = await finish(s3_store, "twice")
        assert await read_all(s3_store, done) == data
        # An upload whose object does not match the ledger is an error, not silently "complete".
        # (Above one part, so it has a multipart upload; a smaller upload is one PutObject.)
        await s3_store.create(UploadInfo(id="lost", length=len(data)))
        info = await s3_store.get_info("lost")
        await s3_store.write(info, chunks(data, MIB))
        with pytest.raises(StorageError, match="gone"):
            await finish(s3_store, "lost")
    finally:
        client.meta.events.unregister("before-call.s3", no_such_upload)


async def test_a_part_in_flight_is_never_copied(s3_store: S3Store) -> None:
    """A part filled in place is sent 64 KiB at a time: memory stays at the part itself.

    Handed to aiohttp as one buffer, an 8 MiB part cost up to three more copies while in flight
    (slice, join with the headers, asyncio's transport buffer): S3 memory grew with concurrency.
    """
    objects = s3_store.objects
    client: Any = await objects.client()
    key = objects.data_key("copies")
    multipart_id = (await client.create_multipart_upload(Bucket=objects.bucket, Key=key))["UploadId"]
    size = 8 * MIB
    data = payload(size, seed=61)

    async def peak_while_uploading(number: int) -> int:
        body = part_buffer(size)
        with body.getbuffer() as view:
            view[:] = data
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            part = await objects.upload_part(key, multipart_id, number, body)
            assert part.size == size
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    await peak_while_uploading(1)  # connection set up, lazily loaded botocore parts
    assert await peak_while_uploading(2) < size // 2  # botocore reads 1 MiB at a time to sign it
    await client.abort_multipart_upload(Bucket=objects.bucket, Key=key, UploadId=multipart_id)
