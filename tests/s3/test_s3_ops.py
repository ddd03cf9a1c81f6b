"""Operations on the S3 backend against SeaweedFS: /readyz probes S3 for real and leaves nothing
behind; every S3 call is counted by operation and outcome, with its latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance.live_server import free_port
from storage_backends.s3 import S3Store
from storage_backends.s3_config import S3Config
from storage_backends.s3_objects import S3Objects
from tests.client.tus import create, patch
from tests.telemetry.scrape import scrape, value
from tusd_py.config.values import Config
from tusd_py.server.app import make_app

pytestmark = pytest.mark.s3


async def test_readyz_writes_and_deletes_a_probe_in_the_bucket(
    aiohttp_client: Any, s3_config: S3Config, tmp_path: Path
) -> None:
    store = S3Store(s3_config)
    client: TestClient[Any, Any] = await aiohttp_client(make_app(Config(storage_dir=str(tmp_path)), store=store))
    before = await scrape(client)
    resp = await client.get("/readyz")
    assert resp.status == 200, await resp.text()
    assert [key async for key, _ in store.objects.list_keys(s3_config.prefix)] == []
    path = await create(client, length=4)
    assert (await patch(client, path, 0, b"abcd")).status == 204
    after = await scrape(client)
    for operation in ("PutObject", "DeleteObject"):  # a 4-byte upload needs no multipart upload
        moved = value(after, "tusd_py_s3_requests_total", operation=operation, outcome="ok")
        assert moved > value(before, "tusd_py_s3_requests_total", operation=operation, outcome="ok"), operation
    assert value(after, "tusd_py_s3_request_duration_seconds_count", operation="PutObject") >= 2


async def test_an_unreachable_endpoint_counts_as_a_network_outcome(s3_config: S3Config) -> None:
    from tusd_py.telemetry import metrics

    dead = S3Config(
        bucket=s3_config.bucket,
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens: connection refused
        region=s3_config.region,
        path_style=True,
        max_attempts=1,
        connect_timeout=1.0,
        access_key_id="x",
        secret_access_key="y",
    )
    objects = S3Objects(dead)
    counter = metrics.S3_REQUESTS.labels("HeadBucket", "network")
    before = counter._value.get()
    try:
        with pytest.raises(Exception):  # noqa: B017 - botocore's connection error class varies by version
            await objects.head_bucket()
    finally:
        await objects.close()
    assert counter._value.get() == before + 1
