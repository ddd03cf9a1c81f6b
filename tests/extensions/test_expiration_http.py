"""Expiration: Upload-Expires on the wire, 410 once expired, and a sweeper that never races a writer."""

import json
import os
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from extensions.expiration import sweep
from storage_backends.filesystem import FileStore
from tests.client.tus import OCTET, TUS, create, id_of, patch, upload_files
from tusd_py.server.app import SERVICE_KEY, UPLOADS_KEY
from tusd_py.server.cli import ONE_SHOT_WITHOUT_REDIS

WEEK = 7 * 24 * 3600


async def age(store: FileStore, upload_id: str, seconds: float) -> None:
    """Pretend the upload's last activity was ``seconds`` ago."""
    info = await store.get_info(upload_id)
    info.updated_at = info.created_at = time.time() - seconds
    await store.update_info(info)
    past = time.time() - seconds
    os.utime(store.directory / upload_id, (past, past))
    os.utime(store.directory / f"{upload_id}.info", (past, past))


def upload_id(path: str) -> str:
    return id_of(path)


async def test_upload_expires_on_creation_patch_and_head(client: TestClient) -> None:
    before = time.time()
    resp = await client.post("/files/", headers={**TUS, "Upload-Length": "6"})
    expires = parsedate_to_datetime(resp.headers["Upload-Expires"]).timestamp()
    assert before + WEEK - 2 <= expires <= time.time() + WEEK + 1
    path = "/files/" + upload_id(resp.headers["Location"])
    assert "Upload-Expires" in (await patch(client, path, 0, b"abc")).headers
    assert "Upload-Expires" in (await client.head(path, headers=TUS)).headers
    done = await patch(client, path, 3, b"def")
    assert "Upload-Expires" not in done.headers  # finished uploads never expire
    assert "Upload-Expires" not in (await client.head(path, headers=TUS)).headers


async def test_expired_upload_is_410_and_swept(client: TestClient) -> None:
    service = client.app[SERVICE_KEY]  # type: ignore[index]
    store = service.store
    path = await create(client, 10)
    await patch(client, path, 0, b"abc")
    await age(store, upload_id(path), WEEK + 60)
    assert (await client.head(path, headers=TUS)).status == 410
    refused = await patch(client, path, 3, b"d")
    assert refused.status == 410 and "expired" in await refused.text()
    report = await sweep(client.app[UPLOADS_KEY])
    assert report.expired == 1
    assert upload_files(store.directory) == []
    assert (await client.head(path, headers=TUS)).status == 404


async def test_finished_uploads_never_expire(client: TestClient) -> None:
    service = client.app[SERVICE_KEY]  # type: ignore[index]
    path = await create(client, 3)
    await patch(client, path, 0, b"abc")
    await age(service.store, upload_id(path), 10 * WEEK)
    assert (await sweep(client.app[UPLOADS_KEY])).expired == 0
    assert (await client.get(path)).status == 200


async def test_sweeper_skips_an_upload_being_written(client: TestClient) -> None:
    service = client.app[SERVICE_KEY]  # type: ignore[index]
    path = await create(client, 10)
    await age(service.store, upload_id(path), WEEK + 60)
    async with service.locker.lock(upload_id(path)):  # as a PATCH in progress holds it
        report = await sweep(client.app[UPLOADS_KEY])
    assert report.expired == 0 and report.skipped_busy == 1
    assert (service.store.directory / upload_id(path)).exists()


async def test_activity_after_listing_saves_the_upload(client: TestClient) -> None:
    service = client.app[SERVICE_KEY]  # type: ignore[index]
    path = await create(client, 10)
    # `now` far in the future marks everything expired at listing, but the re-check under the lock
    # uses the fresh info: still expired here, so it goes. With expiration off nothing goes.
    service.config.expire_after = 0
    assert (await sweep(client.app[UPLOADS_KEY], now=time.time() + 100 * WEEK)).expired == 0
    assert (await client.head(path, headers=TUS)).status == 200


async def test_sweep_removes_orphans(client: TestClient) -> None:
    service = client.app[SERVICE_KEY]  # type: ignore[index]
    directory: Path = service.store.directory
    directory.mkdir(parents=True, exist_ok=True)
    stale = [directory / "abc.pending", directory / "x.info.1234.tmp", directory / "lonelydata"]
    for p in stale:
        p.write_bytes(b"junk")
        os.utime(p, (0, 0))
    fresh = directory / "new.pending"
    fresh.write_bytes(b"in flight")
    report = await sweep(client.app[UPLOADS_KEY])
    assert report.orphans == 3
    assert fresh.exists() and not any(p.exists() for p in stale)


async def test_expiration_disabled(aiohttp_client, storage_dir) -> None:  # type: ignore[no-untyped-def]
    from tusd_py.config.values import Config
    from tusd_py.server.app import make_app

    client = await aiohttp_client(make_app(Config(storage_dir=str(storage_dir), expire_after=0)))
    resp = await client.post("/files/", headers={**TUS, **OCTET, "Upload-Length": "5"}, data=b"ab")
    assert resp.status == 201 and "Upload-Expires" not in resp.headers


@pytest.mark.slow  # the real CLI in a child process
def test_cli_sweep_once(tmp_path: Path) -> None:
    storage = tmp_path / "data"
    storage.mkdir()
    (storage / "orphan.pending").write_bytes(b"x")
    os.utime(storage / "orphan.pending", (0, 0))
    result = subprocess.run(
        [sys.executable, "-m", "tusd_py", "sweep", "--storage-dir", str(storage), "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "expired 0 uploads" in result.stdout and "removed 1 orphans" in result.stdout
    # Without Redis its locks are its own: the operator is told when it is safe to run.
    warnings = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [w["event"] for w in warnings if w.get("level") == "warning"] == [ONE_SHOT_WITHOUT_REDIS]
