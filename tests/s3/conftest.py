"""Fixtures for the S3 backend tests: one SeaweedFS per session, one key prefix per test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from conformance.seaweed import SeaweedS3
from storage_backends.s3 import S3Store
from storage_backends.s3_config import S3Config
from storage_backends.s3_ledger import MIB


def make_config(server: SeaweedS3, prefix: str, **overrides: object) -> S3Config:
    values: dict[str, object] = {
        "bucket": server.bucket,
        "prefix": prefix,
        "endpoint_url": server.endpoint,
        "region": server.region,
        "path_style": True,
        "part_size": 5 * MIB,  # S3's minimum: the smallest tests that still cross part boundaries
        "part_concurrency": 2,
        "max_upload_size": 1024 * MIB,
        "max_attempts": 2,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
    }
    values.update(overrides)
    return S3Config(**values)  # type: ignore[arg-type]


@pytest.fixture
def s3_config(seaweed: SeaweedS3) -> S3Config:
    # A fresh prefix per test: tests share the bucket but never see each other's objects.
    return make_config(seaweed, f"t-{secrets.token_hex(4)}/")


@pytest.fixture
async def s3_store(s3_config: S3Config) -> AsyncIterator[S3Store]:
    store = S3Store(s3_config)
    await store.start()
    try:
        yield store
    finally:
        await store.close()
