"""Checksum extension through the app: verified chunks land, mismatched ones leave no trace."""

import base64
import hashlib

import pytest
from aiohttp.test_utils import TestClient

from tests.client.tus import OCTET, TUS, create, id_of, offset_of, patch, path_of, processed_head


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


async def test_options_lists_algorithms(client: TestClient) -> None:
    resp = await client.options("/files/")
    assert resp.headers["Tus-Checksum-Algorithm"] == "sha1,md5,sha256,sha512,crc32,crc32c"


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512"])
async def test_matching_checksum_is_accepted(client: TestClient, algorithm: str) -> None:
    path = await create(client, 6)
    resp = await patch(client, path, 0, b"abc", Upload_Checksum=checksum(algorithm, b"abc"))
    assert resp.status == 204 and resp.headers["Upload-Offset"] == "3"


async def test_mismatch_is_460_and_keeps_nothing(client: TestClient, storage_dir) -> None:  # type: ignore[no-untyped-def]
    path = await create(client, 6)
    assert (await patch(client, path, 0, b"abc")).status == 204
    resp = await patch(client, path, 3, b"XYZ", Upload_Checksum=checksum("sha1", b"def"))
    assert resp.status == 460
    assert "checksum mismatch" in await resp.text()
    assert await offset_of(client, path) == 3
    assert (storage_dir / id_of(path)).read_bytes() == b"abc"
    assert (await patch(client, path, 3, b"def", Upload_Checksum=checksum("sha1", b"def"))).status == 204
    # the whole-upload digest, computed by processing, covers only the stored bytes
    head = await processed_head(client, path)
    assert head.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(b'abcdef').digest()).decode()}:"


@pytest.mark.parametrize("value", ["sha1", "bogus AAAA", "sha1 @@@@", "sha256 " + base64.b64encode(b"short").decode()])
async def test_malformed_checksum_is_400_before_any_byte(client: TestClient, value: str) -> None:
    path = await create(client, 3)
    resp = await patch(client, path, 0, b"abc", Upload_Checksum=value)
    assert resp.status == 400
    assert await offset_of(client, path) == 0


async def test_creation_with_upload_checksum(client: TestClient) -> None:
    good = await client.post(
        "/files/",
        headers={**TUS, **OCTET, "Upload-Length": "6", "Upload-Checksum": checksum("md5", b"abc")},
        data=b"abc",
    )
    assert good.status == 201 and good.headers["Upload-Offset"] == "3"
    bad = await client.post(
        "/files/",
        headers={**TUS, **OCTET, "Upload-Length": "6", "Upload-Checksum": checksum("md5", b"xyz")},
        data=b"abc",
    )
    assert bad.status == 460
    location = bad.headers["Location"]  # the upload exists: the client can resume it
    assert await offset_of(client, path_of(location)) == 0
    malformed = await client.post(
        "/files/", headers={**TUS, **OCTET, "Upload-Length": "6", "Upload-Checksum": "md5 !!"}, data=b"abc"
    )
    assert malformed.status == 400 and "Location" not in malformed.headers


async def test_checksum_with_body_over_length_keeps_nothing(client: TestClient) -> None:
    path = await create(client, 4)

    async def body():  # type: ignore[no-untyped-def]
        yield b"01"
        yield b"23456"

    resp = await client.patch(
        path,
        headers={**TUS, **OCTET, "Upload-Offset": "0", "Upload-Checksum": checksum("sha1", b"0123456")},
        data=body(),
    )
    assert resp.status == 413
    assert await offset_of(client, path) == 0
