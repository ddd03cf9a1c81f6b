"""The S3 backend behind the real app: a tus client's view (HEAD, PATCH, GET, concatenation, DELETE)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from storage_backends.s3 import S3Store
from storage_backends.s3_config import S3Config
from storage_backends.s3_ledger import MIB
from tests.s3.s3_support import payload
from tests.tus import TUS, create, offset_of, patch, processed_head
from tusd_py.app import make_app
from tusd_py.config import Config

pytestmark = pytest.mark.s3


@pytest.fixture
async def s3_client(aiohttp_client: Any, s3_config: S3Config, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    config = Config(storage_dir=str(tmp_path / "data"), max_size=64 * MIB, lock_timeout=1.0)
    yield await aiohttp_client(make_app(config, store=S3Store(s3_config)))


async def test_tus_upload_through_the_app(s3_client: TestClient[Any, Any]) -> None:
    data = payload(7 * MIB + 11, seed=51)
    name = base64.b64encode(b"clip.mp3").decode()
    path = await create(s3_client, len(data), Upload_Metadata=f"filename {name},filetype YXVkaW8vbXBlZw==")
    for start in range(0, len(data), MIB):  # phone-sized PATCHes
        assert await offset_of(s3_client, path) == start
        response = await patch(s3_client, path, start, data[start : start + MIB])
        assert response.status == 204, await response.text()
    assert await offset_of(s3_client, path) == len(data)
    await processed_head(s3_client, path)  # the digest step read the object back from S3
    response = await s3_client.get(path)
    assert response.status == 200
    assert await response.read() == data
    assert response.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    response = await s3_client.get(path, headers={"Range": "bytes=5242870-5242890"})
    assert response.status == 206 and await response.read() == data[5242870:5242891]
    response = await s3_client.delete(path, headers=TUS)
    assert response.status == 204
    assert (await s3_client.head(path, headers=TUS)).status == 404


async def test_checksum_mismatch_keeps_nothing(s3_client: TestClient[Any, Any]) -> None:
    data = payload(6 * MIB, seed=52)
    path = await create(s3_client, len(data))
    wrong = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    response = await patch(s3_client, path, 0, data, Upload_Checksum=f"sha1 {wrong}")
    assert response.status == 460
    assert await offset_of(s3_client, path) == 0
    right = base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert (await patch(s3_client, path, 0, data, Upload_Checksum=f"sha1 {right}")).status == 204
    assert await (await s3_client.get(path)).read() == data


async def test_concatenation_through_the_app(s3_client: TestClient[Any, Any]) -> None:
    pieces = [payload(5 * MIB + 1, seed=53), payload(100, seed=54)]
    paths = []
    for piece in pieces:
        path = await create(s3_client, len(piece), Upload_Concat="partial")
        assert (await patch(s3_client, path, 0, piece)).status == 204
        paths.append(path)
    response = await s3_client.post("/files/", headers={**TUS, "Upload-Concat": "final;" + " ".join(paths)})
    assert response.status == 201, await response.text()
    final = "/files/" + response.headers["Location"].rsplit("/", 1)[1]
    response = await s3_client.get(final)
    assert response.status == 200
    assert await response.read() == b"".join(pieces)


async def test_zero_length_upload_is_complete_on_creation(s3_client: TestClient[Any, Any]) -> None:
    path = await create(s3_client, 0)
    head = await s3_client.head(path, headers=TUS)
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == "0"
    await processed_head(s3_client, path)
    response = await s3_client.get(path)
    assert response.status == 200 and await response.read() == b""
    assert response.headers["ETag"] == f'"{hashlib.sha256(b"").hexdigest()}"'


async def test_restart_before_the_last_patch_still_records_the_right_digest(
    aiohttp_client: Any, s3_config: S3Config, tmp_path: Path
) -> None:
    """An upload written by two processes: the digest covers what S3 holds, both halves."""
    data = payload(6 * MIB + 5, seed=53)
    config = Config(storage_dir=str(tmp_path / "data"), max_size=64 * MIB)
    first = await aiohttp_client(make_app(config, store=S3Store(s3_config)))
    path = await create(first, len(data))
    assert (await patch(first, path, 0, data[: 3 * MIB])).status == 204
    await first.close()
    second = await aiohttp_client(make_app(config, store=S3Store(s3_config)))
    assert (await patch(second, path, 3 * MIB, data[3 * MIB :])).status == 204
    await processed_head(second, path)
    response = await second.get(path)
    assert await response.read() == data
    assert response.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
