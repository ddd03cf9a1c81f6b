"""A session's three tusd-py instances behind nginx, per storage backend, as docs/deployment.md runs them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.cluster import TusCluster
from conformance.nginx_balancer import find_nginx
from conformance.postgres_server import PostgresServer
from conformance.seaweed import SeaweedS3
from tests.conftest import INTEROP_SECRET


def cluster_args(backend: str, request: pytest.FixtureRequest) -> tuple[tuple[str, ...], dict[str, str]]:
    """Flags and environment of every instance: auth on, as production runs it, on one shared storage
    and one shared PostgreSQL database (a fresh one per cluster)."""
    postgres: PostgresServer = request.getfixturevalue("postgres")
    args: tuple[str, ...] = (
        "--database-url", postgres.create_database(),
        "--max-size", str(4 * 1024**3),
        "--jwt-secret", INTEROP_SECRET,
        "--quota-bytes", "0", "--quota-unfinished", "0",
    )  # fmt: skip
    env: dict[str, str] = {}
    if backend == "s3":
        s3: SeaweedS3 = request.getfixturevalue("seaweed")
        args, env = (*args, *s3.server_args("cluster/")), s3.server_env()
    return args, env


@pytest.fixture(scope="session", params=["filesystem", "s3"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TusCluster]:
    if find_nginx() is None:
        pytest.skip("nginx is not installed (Debian package nginx; make test installs it)")
    args, env = cluster_args(str(request.param), request)
    with TusCluster(tmp_path_factory.mktemp(f"cluster-{request.param}"), *args, env=env) as running:
        yield running
