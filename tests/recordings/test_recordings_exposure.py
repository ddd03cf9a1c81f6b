"""With auth off, the Recordings API lists and deletes every client's uploads: it is served only on
loopback or with --api-without-auth, answers 403 with a reason elsewhere, and the start log says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.client.tus import TUS
from tests.recordings.conftest import ClientFactory, make_config
from tests.tokens import SECRET, bearer
from tusd_py.config.values import Config
from tusd_py.recordings.exposure import REFUSED, decide, is_loopback
from tusd_py.server.app import make_app

# Every token route of the API, with a method it answers to (the OpenAPI document stays public).
API_CALLS = [
    ("GET", "/api/recordings"),
    ("GET", "/api/recordings/abc"),
    ("DELETE", "/api/recordings/abc"),
    ("GET", "/api/queue"),
    ("POST", "/api/sync"),
    ("GET", "/api/stats"),
    ("POST", "/api/cleanup"),
    ("POST", "/api/recordings/abc/download-url"),
]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("uploads.example.com", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("settings", "served"),
    [
        ({}, True),  # make run: 127.0.0.1, auth off
        ({"host": "0.0.0.0"}, False),
        ({"host": "0.0.0.0", "api_without_auth": True}, True),
        ({"behind_proxy": True}, False),  # loopback, but the proxy's clients are anyone's
        ({"behind_proxy": True, "api_without_auth": True}, True),
        ({"host": "0.0.0.0", "jwt_secret": SECRET}, True),  # the token decides
    ],
)
def test_the_decision(settings: dict[str, Any], served: bool) -> None:
    assert decide(Config(**settings)).served is served


def api_log(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if str(entry["event"]).startswith("recordings API")]


async def test_on_loopback_with_auth_off_the_api_is_served(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    with capture_logs() as logs:
        app = make_app(make_config(tmp_path, host="127.0.0.1"))
    [said] = api_log(logs)
    assert said["event"] == "recordings API served" and said["log_level"] == "info"
    assert "loopback only (127.0.0.1)" in said["reason"]
    client = await aiohttp_client(app)
    resp = await client.get("/api/recordings")
    assert resp.status == 200 and (await resp.json())["items"] == []


async def test_beyond_loopback_with_auth_off_every_api_route_is_refused(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    with capture_logs() as logs:
        app = make_app(make_config(tmp_path, host="0.0.0.0"))
    [said] = api_log(logs)
    assert said["event"] == "recordings API refused (403)" and said["log_level"] == "warning"
    assert "listens on 0.0.0.0" in said["reason"] and "--api-without-auth" in said["reason"]
    client = await aiohttp_client(app)
    created = await client.post("/files/", headers={**TUS, "Upload-Length": "3"})
    assert created.status == 201  # tus itself is not affected
    for method, path in API_CALLS:
        resp = await client.request(method, path)
        assert resp.status == 403, (method, path, resp.status)
        problem = await resp.json(content_type=None)
        assert problem["detail"] == REFUSED and problem["code"] == "api-refused-without-auth"
        assert resp.headers["Cache-Control"] == "no-store"
    assert (await client.get("/api/openapi.json")).status == 200


async def test_the_flag_serves_it_and_says_so(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    with capture_logs() as logs:
        app = make_app(make_config(tmp_path, host="0.0.0.0", api_without_auth=True))
    [said] = api_log(logs)
    assert said["event"] == "recordings API served" and said["log_level"] == "warning"
    assert "--api-without-auth" in said["reason"]
    client = await aiohttp_client(app)
    assert (await client.get("/api/recordings")).status == 200


async def test_with_auth_on_nothing_changes_and_nothing_is_logged(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    with capture_logs() as logs:
        app = make_app(make_config(tmp_path, host="0.0.0.0", jwt_secret=SECRET))
    assert api_log(logs) == []
    client = await aiohttp_client(app)
    assert (await client.get("/api/recordings")).status == 401
    assert (await client.get("/api/recordings", headers=bearer("alice"))).status == 200
