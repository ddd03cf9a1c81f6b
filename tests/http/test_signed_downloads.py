"""Signed download links through the real app with auth on: the owner gets a link, anyone holding it
downloads (Range too) until it expires; altered or expired links get 403, other users get nothing."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from tests.client import tus
from tests.client.tus import TUS, id_of
from tests.tokens import SECRET, bearer
from tusd_py.config.values import Config
from tusd_py.http.downloads import signing_key
from tusd_py.protocol.signed_download import signed_query
from tusd_py.server.app import make_app

DATA = bytes(range(256)) * 40
ALICE = {**TUS, **bearer("alice", ttl=24 * 3600)}  # made at import: outlives any suite run


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(storage_dir=str(tmp_path / "data"), jwt_secret=SECRET, workers=0)


async def upload(client: TestClient, data: bytes = DATA, length: int | None = None) -> str:
    """Alice's upload of ``data``; its id."""
    return id_of(await tus.upload(client, data, auth=ALICE, length=length))


async def link_for(client: TestClient, upload_id: str) -> tuple[str, int]:
    resp = await client.post(f"/api/recordings/{upload_id}/download-url", headers=bearer("alice"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    url = urlsplit(body["url"])
    assert url.path == f"/download/{upload_id}"
    expires = int(parse_qs(url.query)["expires"][0])
    # RFC 3339 in the API; the link itself carries Unix seconds.
    assert datetime.fromisoformat(body["expires_at"]).timestamp() == expires
    return f"{url.path}?{url.query}", expires


async def test_the_owners_link_downloads_without_a_token_with_ranges(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(config))
    upload_id = await upload(client)
    link, expires_at = await link_for(client, upload_id)
    assert time.time() + config.download_url_ttl - 5 < expires_at <= time.time() + config.download_url_ttl
    resp = await client.get(link)  # no Authorization: an <audio src> cannot send one
    assert resp.status == 200 and await resp.read() == DATA
    resp = await client.get(link, headers={"Range": "bytes=1000-1999"})
    assert resp.status == 206 and await resp.read() == DATA[1000:2000]
    assert resp.headers["Content-Range"] == f"bytes 1000-1999/{len(DATA)}"
    head = await client.head(link)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(DATA))


async def test_altered_expired_and_unsigned_links_get_403(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(config))
    upload_id, other_id = await upload(client), await upload(client)
    link, expires_at = await link_for(client, upload_id)
    path, query = link.split("?")
    expired = signed_query(signing_key(config), upload_id, int(time.time()) - 1)  # the server's own key
    attempts = {
        "another upload": f"/download/{other_id}?{query}",
        "a later expiry": link.replace(f"expires={expires_at}", f"expires={expires_at + 3600}"),
        "a changed signature": link[:-2] + ("AA" if not link.endswith("AA") else "BB"),
        "expired": f"{path}?{expired}",
        "unsigned": path,
    }
    for what, attempt in attempts.items():
        resp = await client.get(attempt)
        text = await resp.text()
        assert resp.status == 403, (what, resp.status, text)
        assert text.endswith("\n") and DATA[:10].decode("latin-1") not in text, what
    assert "expired" in await (await client.get(attempts["expired"])).text()


async def test_only_the_owner_gets_a_link(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(config))
    upload_id = await upload(client)
    assert (await client.post(f"/api/recordings/{upload_id}/download-url")).status == 401
    bob = await client.post(f"/api/recordings/{upload_id}/download-url", headers=bearer("bob"))
    assert bob.status == 404
    assert (await client.post("/api/recordings/missing/download-url", headers=bearer("alice"))).status == 404


async def test_a_deleted_or_unfinished_upload_is_not_served(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(config))
    half = await upload(client, DATA[:10], length=20)
    link, _ = await link_for(client, half)
    assert (await client.get(link)).status == 409
    done = await upload(client)
    link, _ = await link_for(client, done)
    assert (await client.delete(f"/files/{done}", headers=ALICE)).status == 204
    assert (await client.get(link)).status == 404


async def test_an_explicit_key_is_used_instead_of_the_derived_one(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    explicit = msgspec.structs.replace(config, download_signing_key="k" * 40)
    client: TestClient = await aiohttp_client(make_app(explicit))
    upload_id = await upload(client)
    future = int(time.time()) + 60
    derived = signed_query(signing_key(config), upload_id, future)
    assert (await client.get(f"/download/{upload_id}?{derived}")).status == 403
    own = signed_query(b"k" * 40, upload_id, future)
    assert (await client.get(f"/download/{upload_id}?{own}")).status == 200
    assert signing_key(config) != SECRET.encode() and signing_key(config) == signing_key(config)


async def test_disable_download_refuses_get_and_signed_links(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(msgspec.structs.replace(config, disable_download=True)))
    upload_id = await upload(client)
    link, _ = await link_for(client, upload_id)  # a link may be issued; it serves nothing
    resp = await client.get(f"/files/{upload_id}", headers=ALICE)
    assert resp.status == 405 and "GET" not in resp.headers["Allow"]
    resp = await client.get(link)
    assert resp.status == 403 and "disabled" in await resp.text()
    assert (await client.head(f"/files/{upload_id}", headers=ALICE)).status == 200  # tus goes on
