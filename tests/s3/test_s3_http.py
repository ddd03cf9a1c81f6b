"""The S3 backend behind the real app: a tus client's view (HEAD, PATCH, GET, concatenation, DELETE)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance.seaweed import SeaweedS3
from storage_backends.s3 import S3Store
from storage_backends.s3_config import S3Config
from storage_backends.s3_ledger import MIB
from tests.client.tus import TUS, create, offset_of, patch, path_of, processed_head
from tests.s3.s3_support import chunks, payload
from tusd_py.config.values import Config
from tusd_py.model.upload import UploadInfo
from tusd_py.server.app import make_app

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
    final = path_of(response.headers["Location"])
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


@pytest.mark.parametrize("key,value", [("filetype", b"audio/wav\r\nx: y"), ("filename", b"a\x00b.wav")])
async def test_control_characters_in_header_metadata_are_400_not_503(
    s3_client: TestClient[Any, Any], key: str, value: bytes
) -> None:
    """Before, the raw value went into the S3 object's headers and S3's refusal read as 503 forever."""
    metadata = f"{key} {base64.b64encode(value).decode()}"
    response = await s3_client.post("/files/", headers={**TUS, "Upload-Length": "3", "Upload-Metadata": metadata})
    assert response.status == 400
    assert await response.text() == f"Upload-Metadata {key} contains control characters\n"
    assert "Retry-After" not in response.headers


async def test_stored_metadata_never_makes_the_object_unreadable(
    aiohttp_client: Any, s3_config: S3Config, seaweed: SeaweedS3, tmp_path: Path
) -> None:
    """An upload whose metadata predates the creation limits (a 5,000-character file name, a
    filetype with CR LF) gets object headers from the same safe rule as GET, so reading the object
    back never meets a header the S3 client cannot parse, and GET streams it whole."""
    store = S3Store(s3_config)
    name = "n" * 5000 + ".wav"  # as the probe sent it: HEAD's Upload-Metadata still fits, the old disposition did not
    metadata: dict[str, bytes | None] = {"filename": name.encode(), "filetype": b"audio/wav\r\nx: y"}
    await store.create(UploadInfo(id="legacy", length=3, metadata=metadata))
    info = await store.get_info("legacy")
    info.offset = await store.write(info, chunks(b"abc", 3))
    await store.close()
    # Started now, the server finishes the upload at recovery and processes it.
    config = Config(storage_dir=str(tmp_path / "data"), max_size=64 * MIB)
    s3_client = await aiohttp_client(make_app(config, store=S3Store(s3_config)))
    await processed_head(s3_client, "/files/legacy")  # the digest step read the object back
    head: Any = seaweed.client().head_object(Bucket=seaweed.bucket, Key=s3_config.prefix + "legacy")  # type: ignore[attr-defined]
    assert head["ContentType"] == "application/octet-stream"
    assert len(head["ContentDisposition"]) < 1100 and head["ContentDisposition"].endswith(".wav")
    response = await s3_client.get("/files/legacy")
    assert response.status == 200 and await response.read() == b"abc"
    assert response.headers["Content-Disposition"] == head["ContentDisposition"]
