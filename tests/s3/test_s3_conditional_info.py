"""The info object is written conditionally (If-Match on the version this process last saw): a
writer that lost the upload cannot bring back an info object another instance deleted, nor roll
back a newer writer's ledger, even when no lock service stops it (real SeaweedFS, which answers
a mismatched If-Match with 412 PreconditionFailed, as AWS S3 does)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage_backends.s3 import S3Config, S3Store
from tests.s3.s3_support import chunks, payload
from tusd_py.model.fencing import FenceLost
from tusd_py.model.storage_errors import UploadNotFound
from tusd_py.model.upload import UploadInfo

pytestmark = pytest.mark.s3


@pytest.fixture
async def other_instance(s3_config: S3Config) -> AsyncIterator[S3Store]:
    store = S3Store(s3_config)  # the same bucket and prefix, another process's memory
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_a_stale_writer_cannot_revive_a_deleted_upload(s3_store: S3Store, other_instance: S3Store) -> None:
    await s3_store.create(UploadInfo(id="gone", length=100_000))
    stale = await s3_store.get_info("gone")  # this instance read version 1, then paused
    await other_instance.get_info("gone")
    await other_instance.terminate("gone")  # another instance deleted it meanwhile
    with pytest.raises(FenceLost):  # the late write's commit (its fence check passed before the pause)
        await s3_store.write(stale, chunks(payload(50_000, seed=5), 64 * 1024))
    with pytest.raises(UploadNotFound):
        await other_instance.get_info("gone")  # still gone: nothing was brought back


async def test_a_stale_writer_cannot_roll_back_a_newer_ledger(s3_store: S3Store, other_instance: S3Store) -> None:
    data = payload(300_000, seed=3)
    await s3_store.create(UploadInfo(id="up", length=len(data)))
    stale = await s3_store.get_info("up")
    stale.offset = await s3_store.write(stale, chunks(data[:100_000], 64 * 1024))
    newer = await other_instance.get_info("up")  # the upload moved to another instance
    newer.offset = await other_instance.write(newer, chunks(data[100_000:200_000], 64 * 1024))
    with pytest.raises(FenceLost):  # the old holder's ledger would drop the newer holder's bytes
        await s3_store.write(stale, chunks(payload(100_000, seed=9), 64 * 1024))
    assert (await other_instance.get_info("up")).offset == 200_000


async def test_the_writer_that_knows_the_version_writes_on(s3_store: S3Store) -> None:
    await s3_store.create(UploadInfo(id="mine", length=10))
    info = await s3_store.get_info("mine")
    for name in (b"a", b"b", b"c"):  # each PUT expects the version the previous one made
        info.metadata = {"filename": name}
        await s3_store.update_info(info)
    assert (await s3_store.get_info("mine")).metadata == {"filename": b"c"}


async def _finished(store: S3Store, upload_id: str) -> None:
    data = payload(1000, seed=1)
    await store.create(UploadInfo(id=upload_id, length=len(data)))
    info = await store.get_info(upload_id)
    info.offset = await store.write(info, chunks(data, 512))
    info.finished_at = 1.0
    await store.finish(info)


async def test_a_digest_needs_no_lock_and_lands_only_over_the_version_it_read(
    s3_store: S3Store, other_instance: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """record_digest writes without the upload's lock: its If-Match is what keeps it off an upload
    terminated (or made anew under the same id) between its read and its write. Without it this
    late write would bring the info object back."""
    await _finished(s3_store, "done")
    assert await s3_store.record_digest("done", "ab" * 32)
    assert (await other_instance.get_info("done")).sha256 == "ab" * 32
    assert await s3_store.record_digest("done", "ab" * 32)  # recorded already: no PUT, no conflict

    await _finished(s3_store, "racy")
    read = s3_store.objects.get_with_etag

    async def then_terminated(key: str, **kwargs: object) -> tuple[bytes, str]:
        got = await read(key)
        monkeypatch.setattr(s3_store.objects, "get_with_etag", read)
        await other_instance.get_info("racy")
        await other_instance.terminate("racy")  # another instance deletes it between read and write
        return got

    monkeypatch.setattr(s3_store.objects, "get_with_etag", then_terminated)
    assert not await s3_store.record_digest("racy", "cd" * 32)  # refused: the locked path decides
    with pytest.raises(UploadNotFound):
        await other_instance.get_info("racy")  # nothing was brought back

    await _finished(s3_store, "anew")

    async def then_made_anew(key: str, **kwargs: object) -> tuple[bytes, str]:
        got = await read(key)
        monkeypatch.setattr(s3_store.objects, "get_with_etag", read)
        await other_instance.get_info("anew")
        await other_instance.terminate("anew")
        await other_instance.create(UploadInfo(id="anew", length=5))  # someone else's, unfinished
        return got

    monkeypatch.setattr(s3_store.objects, "get_with_etag", then_made_anew)
    assert not await s3_store.record_digest("anew", "ef" * 32)
    fresh = await other_instance.get_info("anew")
    assert (fresh.length, fresh.finished_at, fresh.sha256) == (5, None, None)


async def test_no_digest_is_recorded_on_an_unfinished_or_missing_upload(s3_store: S3Store) -> None:
    await s3_store.create(UploadInfo(id="open", length=10))
    assert not await s3_store.record_digest("open", "ab" * 32)  # not finished: the locked path decides
    assert (await s3_store.get_info("open")).sha256 is None
    assert await s3_store.record_digest("never", "ab" * 32)  # gone: nothing to record
    with pytest.raises(UploadNotFound):
        await s3_store.get_info("never")
