"""Paths and methods no route serves get a plain-text reason like every other error (issue 18 item 7)."""

from __future__ import annotations

from pathlib import Path

from pytest_aiohttp import AiohttpClient

from tests.tokens import SECRET, bearer
from tusd_py.config.values import Config
from tusd_py.server.app import make_app


async def test_unknown_paths_and_methods_say_why(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    client = await aiohttp_client(make_app(Config(storage_dir=str(tmp_path), jwt_secret=SECRET)))
    for path in ("/api/", "/api", "/nope"):
        resp = await client.get(path, headers=bearer("alice"))
        assert (resp.status, await resp.text()) == (404, f"no such path: {path}\n")
        assert resp.content_type == "text/plain"
    resp = await client.post("/healthz", headers=bearer("alice"))
    assert resp.status == 405
    assert await resp.text() == "method POST not allowed on /healthz\n"
    assert "GET" in resp.headers["Allow"]
    # Handlers' own 404s keep their reason.
    resp = await client.head(
        "/files/0123456789abcdef0123456789abcdef", headers={"Tus-Resumable": "1.0.0", **bearer("a")}
    )
    assert resp.status == 404
