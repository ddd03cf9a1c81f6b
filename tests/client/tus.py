"""Small helpers for talking tus through aiohttp's test client."""

from __future__ import annotations

import asyncio

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}


async def create(client: TestClient, length: int | None = 10, **headers: str) -> str:
    """Create an upload and return its path."""
    h = {**TUS, **{k.replace("_", "-"): v for k, v in headers.items()}}
    if length is not None:
        h["Upload-Length"] = str(length)
    resp = await client.post("/files/", headers=h)
    assert resp.status == 201, await resp.text()
    location = resp.headers["Location"]
    return "/files/" + location.rsplit("/", 1)[1]


async def patch(client: TestClient, path: str, offset: int, data: bytes, **headers: str) -> ClientResponse:
    h = {**TUS, **OCTET, "Upload-Offset": str(offset), **{k.replace("_", "-"): v for k, v in headers.items()}}
    return await client.patch(path, headers=h, data=data)


async def offset_of(client: TestClient, path: str) -> int:
    resp = await client.head(path, headers=TUS)
    assert resp.status == 200, resp.status
    return int(resp.headers["Upload-Offset"])


def upload_files(directory) -> list[str]:  # type: ignore[no-untyped-def]
    """Files of uploads in a filesystem storage directory (the SQLite state database aside)."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("state.sqlite3"))


async def processed_head(client: TestClient, path: str, attempts: int = 400) -> ClientResponse:
    """HEAD of a finished upload once post-finish processing recorded its digest (Repr-Digest set)."""
    for _ in range(attempts):
        head = await client.head(path, headers=TUS)
        if "Repr-Digest" in head.headers:
            return head
        await asyncio.sleep(0.01)
    raise AssertionError(f"no Repr-Digest on {path} after {attempts} HEADs: was the upload processed?")
