"""Shared fixtures: an in-process app with aiohttp's test client, and real servers by PID."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from conformance.live_server import LiveServer
from storage_backends.filesystem import FileStore
from tusd_py.app import make_app
from tusd_py.config import Config


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def config(storage_dir: Path) -> Config:
    return Config(storage_dir=str(storage_dir), max_size=64 * 1024 * 1024, lock_timeout=1.0)


@pytest.fixture
def file_store(storage_dir: Path) -> FileStore:
    return FileStore(storage_dir)


@pytest.fixture
async def client(aiohttp_client, config: Config) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
    yield await aiohttp_client(make_app(config))


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "live-data", "--max-size", str(1024**3))
    with server:
        yield server


@pytest.fixture(scope="session")
def session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("session-server") / "data", "--max-size", str(4 * 1024**3))
    with server:
        yield server


@pytest.fixture(scope="session")
def tus_url(session_server: LiveServer) -> str:
    """The upload collection of a live tusd-py, for tests that drive real tus clients."""
    return session_server.url


@pytest.fixture(scope="session")
def auth_headers() -> dict[str, str]:
    return {}
