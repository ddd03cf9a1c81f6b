"""Client input the server must refuse with a 4xx naming the problem: never a 500 or a 503.

Metadata that could not be sent back (too long, control characters in values that become
download headers) is refused at creation; numbers of thousands of digits are 400 / 416.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.client.tus import OCTET, TUS, create, offset_of, patch, upload_files


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


HUGE = "9" * 5000  # past Python's 4,300-digit int() limit


@pytest.mark.parametrize(
    "metadata,reason",
    [
        (f"filetype {b64(b'audio/wav' + bytes([13, 10]) + b'x: y')}", "filetype contains control characters"),
        (f"filename {b64(b'a' + bytes([0]) + b'.wav')}", "filename contains control characters"),
        (f"filename {b64(b'a' + bytes([10]) + b'b.wav')}", "filename contains control characters"),
        (f"filename {b64(b'x' * 256)}", "filename is longer than 255 bytes"),
        (f"filename {b64(bytes([0xFF, 0xFE]))}", "filename is not UTF-8"),
        (",".join(f"k{i}" for i in range(33)), "more than 32 keys"),
        (f"notes {b64(b'x' * 2049)}", "longer than 2048 bytes"),
        (f"a {b64(b'x' * 1600)},b {b64(b'x' * 1600)}", "longer than 4096 bytes"),
    ],
)
async def test_creation_refuses_unsendable_metadata(
    client: TestClient, storage_dir: Path, metadata: str, reason: str
) -> None:
    for headers in ({"Upload-Length": "3"}, {"Upload-Concat": "partial", "Upload-Length": "3"}):
        resp = await client.post("/files/", headers={**TUS, **headers, "Upload-Metadata": metadata})
        assert resp.status == 400
        text = await resp.text()
        assert reason in text and text.endswith("\n")
    assert upload_files(storage_dir) == []


async def test_metadata_at_the_limits_round_trips_and_downloads(client: TestClient) -> None:
    name = "会".encode() * 85  # 255 bytes
    metadata = f"filename {b64(name)},filetype {b64(b'audio/wav')},notes {b64(b'x' * 2048)}"
    path = await create(client, 3, Upload_Metadata=metadata)
    assert (await client.head(path, headers=TUS)).headers["Upload-Metadata"] == metadata
    assert (await patch(client, path, 0, b"abc")).status == 204
    resp = await client.get(path)
    assert resp.status == 200 and await resp.read() == b"abc"
    assert resp.headers["Content-Type"] == "audio/wav"
    assert resp.headers["Content-Disposition"].startswith("inline; ")


@pytest.mark.parametrize("header", ["Upload-Offset", "Upload-Length"])
async def test_patch_numbers_of_thousands_of_digits_are_400(client: TestClient, header: str) -> None:
    path = await create(client, None, Upload_Defer_Length="1")  # so PATCH may declare Upload-Length
    numbers = {"Upload-Offset": "0", header: HUGE}
    resp = await client.patch(path, headers={**TUS, **OCTET, **numbers}, data=b"abc")
    assert resp.status == 400
    assert "too large" in await resp.text()
    assert await offset_of(client, path) == 0


async def test_creation_length_of_thousands_of_digits_is_400(client: TestClient) -> None:
    resp = await client.post("/files/", headers={**TUS, "Upload-Length": HUGE})
    assert resp.status == 400
    assert await resp.text() == "Upload-Length is too large\n"


@pytest.mark.parametrize(
    "range_header,status,body",
    [
        (f"bytes=0-{HUGE}", 206, b"0123456789"),
        (f"bytes=-{HUGE}", 206, b"0123456789"),
        (f"bytes=2-{'0' * 5000}4", 206, b"234"),
        (f"bytes={HUGE}-", 416, b"requested range not satisfiable\n"),
        (f"bytes={HUGE}-{'9' * 3000}", 416, b"requested range not satisfiable\n"),
    ],
)
async def test_range_of_thousands_of_digits_is_served_or_416(
    client: TestClient, range_header: str, status: int, body: bytes
) -> None:
    path = await create(client, 10)
    assert (await patch(client, path, 0, b"0123456789")).status == 204
    resp = await client.get(path, headers={"Range": range_header})
    assert resp.status == status
    assert await resp.read() == body
