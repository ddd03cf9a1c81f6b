"""The S3 client's own cost per call: aiobotocore (what tusd-py uses, via aioboto3) against an
alternative async client, on the same fresh SeaweedFS, in one run.

    .venv/bin/python bench/s3_clients.py [--calls 1000] [--concurrency 16]

Issue 16: on S3 small uploads botocore's per-call work is about three quarters of the event loop's
time (bench/RESULTS.md), so a cheaper client would be the next lever. Each client makes the calls a
small upload costs tusd-py: PutObject of a 4 KiB body with its Content-MD5 (the data object), a
PutObject of a small JSON (the info object), HeadObject and a ranged GetObject, ``--calls`` times
with ``--concurrency`` at once. Printed: wall time, calls/s and this process's CPU per call (the
client's cost; SeaweedFS runs in its own process). Alternatives are only candidates if they support
everything the backend needs through their public API: a multipart upload resumed by id from
another process (CreateMultipartUpload / UploadPart / ListParts / Complete / Abort), UploadPartCopy
and ranged GET. Installs nothing: miniopy-async is in the ``bench`` extra.

miniopy-async's put_object takes no Content-MD5 (a "Content-MD5" in its metadata becomes user
metadata, checked by nobody); over plain http it signs the body's SHA-256 instead. On 4 KiB that is
a few microseconds either way, below what this measures.

Measured (2 cores, SeaweedFS on the same machine): miniopy-async costs 0.18-0.44x aiobotocore's CPU
per call. It does not qualify: multipart uploads are only reachable through its private
``_create_multipart_upload`` / ``_upload_part`` / ``_list_parts`` / ``_upload_part_copy``
methods (its public put_object and compose_object run a whole multipart upload in one call, which
cannot be resumed by another process), so the backend keeps aiobotocore (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conformance.seaweed import SeaweedS3  # noqa: E402

BODY = os.urandom(4096)
INFO = b'{"id":"x","length":4096,"offset":4096,"metadata":{"filename":"bWVtby5tNGE="}}'
MD5 = base64.b64encode(hashlib.md5(BODY).digest()).decode()
INFO_MD5 = base64.b64encode(hashlib.md5(INFO).digest()).decode()

Call = Callable[[int], Awaitable[None]]


async def measure(name: str, calls: int, concurrency: int, call: Call) -> tuple[str, float, float]:
    slots = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with slots:
            await call(n)

    await asyncio.gather(*(one(n) for n in range(min(calls, 50))))  # warm pools and caches
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(calls)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return name, calls / wall, 1000 * cpu / calls


async def aiobotocore_calls(s3: SeaweedS3, calls: int, concurrency: int) -> list[tuple[str, float, float]]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    # The configuration storage_backends/s3_objects.py gives its client.
    config = AioConfig(
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=max(10, concurrency),
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name=s3.region,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        config=config,
    ) as client:
        bucket = s3.bucket

        async def put_data(n: int) -> None:
            await client.put_object(Bucket=bucket, Key=f"b/{n}", Body=BODY, ContentMD5=MD5)

        async def put_info(n: int) -> None:
            await client.put_object(Bucket=bucket, Key=f"b/{n}.info", Body=INFO, ContentMD5=INFO_MD5)

        async def head(n: int) -> None:
            await client.head_object(Bucket=bucket, Key=f"b/{n}")

        async def get(n: int) -> None:
            answer = await client.get_object(Bucket=bucket, Key=f"b/{n}", Range="bytes=0-1023")
            async with answer["Body"] as stream:
                await stream.read()

        return [
            await measure("aiobotocore PutObject 4 KiB", calls, concurrency, put_data),
            await measure("aiobotocore PutObject info", calls, concurrency, put_info),
            await measure("aiobotocore HeadObject", calls, concurrency, head),
            await measure("aiobotocore GetObject range", calls, concurrency, get),
        ]


async def minio_calls(s3: SeaweedS3, calls: int, concurrency: int) -> list[tuple[str, float, float]]:
    from miniopy_async import Minio

    host = s3.endpoint.removeprefix("http://")
    client = Minio(host, access_key=s3.access_key, secret_key=s3.secret_key, secure=False, region=s3.region)
    bucket = s3.bucket

    async def put_data(n: int) -> None:
        await client.put_object(bucket, f"m/{n}", io.BytesIO(BODY), len(BODY))

    async def put_info(n: int) -> None:
        await client.put_object(bucket, f"m/{n}.info", io.BytesIO(INFO), len(INFO))

    async def head(n: int) -> None:
        await client.stat_object(bucket, f"m/{n}")

    async def get(n: int) -> None:
        response: Any = await client.get_object(bucket, f"m/{n}", offset=0, length=1024)
        try:
            await response.read()
        finally:
            response.close()

    try:
        return [
            await measure("miniopy-async PutObject 4 KiB", calls, concurrency, put_data),
            await measure("miniopy-async PutObject info", calls, concurrency, put_info),
            await measure("miniopy-async HeadObject", calls, concurrency, head),
            await measure("miniopy-async GetObject range", calls, concurrency, get),
        ]
    finally:
        close = getattr(client, "close_session", None)
        if close is not None:
            await close()


async def run(args: argparse.Namespace, s3: SeaweedS3) -> None:
    rows = await aiobotocore_calls(s3, args.calls, args.concurrency)
    try:
        rows += await minio_calls(s3, args.calls, args.concurrency)
    except ImportError:
        print("miniopy-async is not installed (pip install -e '.[bench]'): only aiobotocore measured")
    print(f"{args.calls} calls each, {args.concurrency} at once, SeaweedFS on 127.0.0.1")
    print(f"{'call':34} {'calls/s':>9} {'CPU ms/call':>12}")
    for name, rate, cpu in rows:
        print(f"{name:34} {rate:9.0f} {cpu:12.2f}")
    by_call: dict[str, dict[str, float]] = {}
    for name, _, cpu in rows:
        client, _, call = name.partition(" ")
        by_call.setdefault(call, {})[client] = cpu
    for call, cpus in by_call.items():
        if len(cpus) == 2:
            print(
                f"{call}: miniopy-async / aiobotocore CPU per call {cpus['miniopy-async'] / cpus['aiobotocore']:.2f}x"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s3-clients-") as work:
        server = SeaweedS3(Path(work), bucket="clients")
        server.start()
        try:
            asyncio.run(run(args, server))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
