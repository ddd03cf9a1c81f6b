"""The /demo routes without a browser: off by default, public with auth on, nothing from elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tusd_py.config.values import Config
from tusd_py.demo import DEMO_PREFIX, routes
from tusd_py.server.app import make_app


def _config(tmp_path: Path, **changes: object) -> Config:
    return Config(storage_dir=str(tmp_path / "data"), workers=0, **changes)  # type: ignore[arg-type]


async def test_off_by_default(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(_config(tmp_path)))
    assert (await client.get("/demo/")).status == 404


async def test_page_and_config_with_auth_on_need_no_token(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = _config(tmp_path, demo=True, jwt_secret="s" * 40, base_path="/uploads/")
    client: TestClient = await aiohttp_client(make_app(config))
    page = await client.get("/demo/")
    assert page.status == 200 and page.content_type == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    html = await page.text()
    # Everything the page loads is relative to it: no CDN, no absolute URL.
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {"app.css", "build/app.js"} <= set(assets)
    assert not [a for a in assets if a.startswith(("/", "http:", "https:", "//"))], assets
    assert (await client.get("/demo/config.json")).status == 200
    assert await (await client.get("/demo/config.json")).json() == {
        "tus_endpoint": "../uploads/",
        "api_prefix": "../api/v1",
        "auth": True,
    }
    assert (await client.get("/demo/app.css")).content_type == "text/css"
    assert (await client.get("/api/v1/recordings")).status == 401  # the API it calls still needs the token


async def test_redirect_and_unknown_files(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(_config(tmp_path, demo=True)))
    moved = await client.get("/demo", allow_redirects=False)
    assert moved.status == 301 and moved.headers["Location"] == DEMO_PREFIX.strip("/") + "/"  # relative
    assert (await client.get("/demo/index.html")).content_type == "text/html"
    for path in ("/demo/build/", "/demo/src/app.js", "/demo/package.json", "/demo/static/app.css"):
        missing = await client.get(path)
        assert missing.status == 404, path
        assert (await missing.text()).endswith("\n")


async def test_unbuilt_bundle_says_how_to_build_it(
    aiohttp_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html>")
    monkeypatch.setattr(routes, "STATIC_DIR", static)  # a source checkout before `make demo`
    client: TestClient = await aiohttp_client(make_app(_config(tmp_path, demo=True)))
    assert (await client.get("/demo/")).status == 200
    unbuilt = await client.get("/demo/build/app.js")
    assert unbuilt.status == 503
    assert await unbuilt.text() == "the demo is not built (build/app.js missing): run `make demo`\n"
