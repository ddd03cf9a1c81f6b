"""Background work of several processes or instances on one shared locker: one expiration sweep
and one cleanup of failed recordings at a time; the others skip their round.

Two services on one store and one locker stand for two instances; which locker it is does not
matter to this rule (try_lock on a name no upload can have); the Redis locker's try_lock across
instances is tested with it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.client.tus import create, patch, upload_files
from tests.extensions.test_expiration_http import WEEK, age, upload_id
from tusd_py.config.values import Config
from tusd_py.locks.locker import CLEANUP_LOCK, SWEEP_LOCK
from tusd_py.server.app import SERVICE_KEY
from tusd_py.server.background import sweep_once_shared
from tusd_py.server.wiring import build_service
from tusd_py.uploads.operations import Uploads
from tusd_py.uploads.tus_service import TusService


def _second_instance(first: TusService, storage_dir: Path) -> Uploads:
    return Uploads(build_service(Config(storage_dir=str(storage_dir)), store=first.store, locker=first.locker))


async def test_a_sweep_in_progress_elsewhere_skips_this_round(client: TestClient, storage_dir: Path) -> None:
    first = client.app[SERVICE_KEY]  # type: ignore[index]
    second = _second_instance(first, storage_dir)
    path = await create(client, 10)
    await patch(client, path, 0, b"abc")
    await age(first.store, upload_id(path), WEEK + 60)
    async with first.locker.try_lock(SWEEP_LOCK):  # the other instance is sweeping
        assert await sweep_once_shared(second) is None
        assert upload_files(first.store.directory) != []
    report = await sweep_once_shared(second)
    assert report is not None and report.expired == 1
    assert upload_files(first.store.directory) == []


async def test_concurrent_sweeps_run_once(client: TestClient, storage_dir: Path) -> None:
    first = client.app[SERVICE_KEY]  # type: ignore[index]
    second = _second_instance(first, storage_dir)
    for _ in range(3):
        path = await create(client, 10)
        await age(first.store, upload_id(path), WEEK + 60)
    reports = await asyncio.gather(sweep_once_shared(Uploads(first)), sweep_once_shared(second))
    ran = [report for report in reports if report is not None]
    assert len(ran) == 1 and ran[0].expired == 3


def test_background_lock_names_are_not_upload_ids() -> None:
    from tusd_py.model.upload import UPLOAD_ID

    assert not UPLOAD_ID.fullmatch(SWEEP_LOCK) and not UPLOAD_ID.fullmatch(CLEANUP_LOCK)
