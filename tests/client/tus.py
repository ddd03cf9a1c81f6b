"""tus through aiohttp's client, for tests: create, PATCH, HEAD, whole uploads.

Every helper takes ``client``: aiohttp's test client, or :func:`session` on a live server (both
resolve the relative paths used here). Headers given as keywords are sent as written, an
underscore standing for a hyphen (``Upload_Metadata=...``); ``**bearer("alice")`` passes a token.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientResponse, ClientSession
from aiohttp.test_utils import TestClient

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}
COLLECTION = "/files/"

Client = TestClient[Any, Any] | ClientSession


def session(url: str) -> ClientSession:
    """A client session on the origin of a live server's ``url``, for these helpers' relative paths."""
    parts = urlsplit(url)
    return ClientSession(base_url=f"{parts.scheme}://{parts.netloc}")


def path_of(location: str) -> str:
    """The upload's path under the collection, from its Location (absolute or not)."""
    return COLLECTION + id_of(location)


def id_of(location: str) -> str:
    """The upload id at the end of a Location or path."""
    return location.rsplit("/", 1)[1]


def metadata(**values: str) -> str:
    """An Upload-Metadata value: each key with its value in base64 (tus 1.0.0, Creation)."""
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


def _named(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items()}


async def create(client: Client, length: int | None = 10, *, data: bytes | None = None, **headers: str) -> str:
    """Create an upload (201 asserted) and return its path; ``data`` goes in the creation request."""
    h = {**TUS, **(OCTET if data is not None else {}), **_named(headers)}
    if length is not None:
        h["Upload-Length"] = str(length)
    resp = await client.post(COLLECTION, headers=h, data=data)
    assert resp.status == 201, await resp.text()
    await resp.read()
    return path_of(resp.headers["Location"])


async def patch(client: Client, path: str, offset: int, data: bytes, **headers: str) -> ClientResponse:
    h = {**TUS, **OCTET, "Upload-Offset": str(offset), **_named(headers)}
    resp = await client.patch(path, headers=h, data=data)
    await resp.read()
    return resp


async def upload(
    client: Client,
    data: bytes,
    *,
    auth: Mapping[str, str] | None = None,
    length: int | None = None,
    chunk: int | None = None,
    **headers: str,
) -> str:
    """An upload created with ``headers``, then ``data`` sent from offset 0 in PATCHes of ``chunk``
    bytes (all of it in one by default), each 204 asserted; ``auth`` goes on every request. Finished
    unless ``length`` (the data's by default) is larger. Returns its path."""
    every = dict(auth or {})
    path = await create(client, len(data) if length is None else length, **every, **headers)
    step = chunk or max(len(data), 1)
    for offset in range(0, len(data), step):
        resp = await patch(client, path, offset, data[offset : offset + step], **every)
        assert resp.status == 204, await resp.text()
    return path


async def offset_of(client: Client, path: str, **headers: str) -> int:
    resp = await client.head(path, headers={**TUS, **_named(headers)})
    assert resp.status == 200, resp.status
    return int(resp.headers["Upload-Offset"])


def upload_files(directory) -> list[str]:  # type: ignore[no-untyped-def]
    """Files of uploads in a filesystem storage directory (the SQLite state database aside)."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("state.sqlite3"))


async def processed_head(client: Client, path: str, attempts: int = 400) -> ClientResponse:
    """HEAD of a finished upload once post-finish processing recorded its digest (Repr-Digest set)."""
    for _ in range(attempts):
        head = await client.head(path, headers=TUS)
        if "Repr-Digest" in head.headers:
            return head
        await asyncio.sleep(0.01)
    raise AssertionError(f"no Repr-Digest on {path} after {attempts} HEADs: was the upload processed?")
