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
