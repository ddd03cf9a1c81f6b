"""GET downloads, CORS for browsers and Location behind proxies."""

import base64
import hashlib

from aiohttp.test_utils import TestClient

from tests.client.tus import TUS, create, metadata, patch, processed_head, upload
from tusd_py.config.values import Config
from tusd_py.server.app import make_app


async def test_get_streams_bytes_with_type_disposition_and_digest(client: TestClient) -> None:
    data = bytes(range(256)) * 1000
    path = await upload(client, data, Upload_Metadata=metadata(filename="voix-été-会議-🎤.m4a", filetype="audio/mp4"))
    await processed_head(client, path)
    resp = await client.get(path)
    assert resp.status == 200
    assert await resp.read() == data
    assert resp.headers["Content-Length"] == str(len(data))
    assert resp.headers["Content-Type"] == "audio/mp4"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("inline;")
    assert "filename*=UTF-8''voix-%C3%A9t%C3%A9-%E4%BC%9A%E8%AD%B0-%F0%9F%8E%A4.m4a" in disposition
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert resp.headers["Repr-Digest"] == f"sha-256=:{digest}:"


async def test_get_html_is_never_served_as_html(client: TestClient) -> None:
    path = await upload(
        client, b"<script>alert(1)</script>", Upload_Metadata=metadata(filetype="text/html", filename="x.html")
    )
    resp = await client.get(path)
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_get_ranges(client: TestClient) -> None:
    path = await upload(client, b"0123456789")
    resp = await client.get(path, headers={"Range": "bytes=2-5"})
    assert resp.status == 206 and await resp.read() == b"2345"
    assert resp.headers["Content-Range"] == "bytes 2-5/10"
    resp = await client.get(path, headers={"Range": "bytes=-3"})
    assert await resp.read() == b"789"
    resp = await client.get(path, headers={"Range": "bytes=10-"})
    assert resp.status == 416 and resp.headers["Content-Range"] == "bytes */10"


async def test_get_of_unfinished_upload_is_a_clear_409(client: TestClient) -> None:
    path = await create(client, 10)
    await patch(client, path, 0, b"abc")
    resp = await client.get(path)
    assert resp.status == 409
    assert "not finished" in await resp.text()


async def test_get_unknown_is_404(client: TestClient) -> None:
    assert (await client.get("/files/nope")).status == 404


async def test_cors_preflight_and_exposed_headers(client: TestClient) -> None:
    resp = await client.options(
        "/files/",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PATCH",
                 "Access-Control-Request-Headers": "upload-offset, tus-resumable"},
    )  # fmt: skip
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "PATCH" in resp.headers["Access-Control-Allow-Methods"]
    resp = await client.post("/files/", headers={**TUS, "Upload-Length": "1", "Origin": "https://app.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Location" in resp.headers["Access-Control-Expose-Headers"]
    assert "Upload-Offset" in resp.headers["Access-Control-Expose-Headers"]
    err = await client.head("/files/nope", headers={**TUS, "Origin": "https://app.example"})
    assert err.status == 404 and err.headers["Access-Control-Allow-Origin"] == "*"


async def test_cors_restricted_origins(aiohttp_client, storage_dir) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(make_app(Config(storage_dir=str(storage_dir), cors_origins=["https://ok.example"])))
    ok = await client.options(
        "/files/", headers={"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"}
    )
    assert ok.headers["Access-Control-Allow-Origin"] == "https://ok.example" and ok.headers["Vary"] == "Origin"
    bad = await client.options(
        "/files/", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in bad.headers


async def test_location_behind_proxy_with_prefix(aiohttp_client, storage_dir) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(make_app(Config(storage_dir=str(storage_dir), behind_proxy=True)))
    resp = await client.post(
        "/files/",
        headers={**TUS, "Upload-Length": "1", "X-Forwarded-Host": "media.example.com",
                 "X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/api"},
    )  # fmt: skip
    assert resp.headers["Location"].startswith("https://media.example.com/api/files/")


async def test_location_ignores_forwarding_headers_by_default(client: TestClient) -> None:
    resp = await client.post("/files/", headers={**TUS, "Upload-Length": "1", "X-Forwarded-Host": "evil.example"})
    assert "evil.example" not in resp.headers["Location"]
    assert resp.headers["Location"].startswith(f"http://{client.host}:{client.port}/files/")


async def test_custom_base_path(aiohttp_client, storage_dir) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(make_app(Config(storage_dir=str(storage_dir), base_path="/api/uploads")))
    resp = await client.post("/api/uploads", headers={**TUS, "Upload-Length": "1"})
    assert resp.status == 201 and "/api/uploads/" in resp.headers["Location"]
