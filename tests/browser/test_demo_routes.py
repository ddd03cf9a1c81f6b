"""What the server gives the /demo page (issue 28): URLs relative to the page, and the offline shell's files.

No browser here: the pure rule, then the live server's answers (auth on: the page's files are public).
"""

from __future__ import annotations

import json

import pytest

from conformance.live_server import LiveServer
from tests.interop.interop_support import request
from tusd_py.demo.routes import relative_to_page


@pytest.mark.parametrize(
    ("path", "relative"),
    [("/files/", "../files/"), ("/api", "../api"), ("/tus/v1/files/", "../tus/v1/files/"), ("/demo/x/", "x/")],
)
def test_server_paths_become_relative_to_the_page(path: str, relative: str) -> None:
    assert relative_to_page(path) == relative


def test_redirect_and_config_are_relative_so_a_proxy_prefix_survives(demo_server: LiveServer) -> None:
    base = f"http://127.0.0.1:{demo_server.port}"
    moved = request("GET", f"{base}/demo")
    assert moved.status == 301 and moved.headers["location"] == "demo/"
    config = request("GET", f"{base}/demo/config.json")
    assert config.status == 200
    assert json.loads(config.body) == {"tus_endpoint": "../files/", "api_prefix": "../api/v1", "auth": True}


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("sw.js", "text/javascript"),
        ("manifest.webmanifest", "application/manifest+json"),
        ("icon.svg", "image/svg+xml"),
    ],
)
def test_offline_shell_files_are_served_with_the_page_policy(
    demo_server: LiveServer, name: str, content_type: str
) -> None:
    got = request("GET", f"http://127.0.0.1:{demo_server.port}/demo/{name}")
    assert got.status == 200 and got.headers["content-type"].startswith(content_type)
    csp = got.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp  # workers and manifests: 'self' only
    assert got.body


def test_files_outside_the_list_are_not_served(demo_server: LiveServer) -> None:
    assert request("GET", f"http://127.0.0.1:{demo_server.port}/demo/src/app.js").status == 404
