"""A live tusd-py with --demo and auth on, shared by the browser scenarios of this directory."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from conformance.live_server import LiveServer
from tests.browser.browser_support import ensure_ready
from tusd_py.auth import AuthConfig, mint_dev_token

SECRET = secrets.token_urlsafe(48)


@pytest.fixture(scope="session")
def node() -> str:
    return ensure_ready()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("demo-server") / "data",
        "--demo", "--jwt-secret", SECRET, "--quota-bytes", "0", "--quota-unfinished", "0",
    )  # fmt: skip
    with server:
        yield server


@pytest.fixture(scope="module")
def token() -> str:
    return mint_dev_token(AuthConfig(enabled=True, secret=SECRET), "demo-user", ttl=3600)
