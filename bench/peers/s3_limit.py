"""The S3 limit: the workload's bytes sent straight to S3 by a minimal aiobotocore multipart client.

No tus server in between: each upload is CreateMultipartUpload, UploadPart per part of
``--part-size`` (parts of all uploads share ``--part-concurrency`` slots, as tusd-py's server-wide
part budget does) and CompleteMultipartUpload; an upload below one part is one PutObject. Same
payload pool and sizes as bench/client.py, same SeaweedFS. Issue 16 asks tusd-py's S3 large and
conc16 to keep >= 80% of this. Prints one JSON result like bench/client.py (verified by reading
every object back and comparing its SHA-256).

    python bench/peers/s3_limit.py --workload large --endpoint URL --bucket B --region R [--quick]
      (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from client import MiB, Payloads, Result, Workload, percentile, workload


async def upload(s3: Any, bucket: str, key: str, parts: list[memoryview], slots: asyncio.Semaphore) -> list[float]:
    """One object from ``parts`` (each one S3 part); returns the seconds of each part request.
    aiobotocore takes bytes, not memoryviews: one copy per part, as tusd-py makes into its part buffer."""
    latencies: list[float] = []
    if len(parts) == 1:
        async with slots:
            began = time.perf_counter()
            await s3.put_object(Bucket=bucket, Key=key, Body=bytes(parts[0]))
            latencies.append(time.perf_counter() - began)
        return latencies
    created = await s3.create_multipart_upload(Bucket=bucket, Key=key)
    upload_id = created["UploadId"]

    async def part(number: int, body: memoryview) -> dict[str, Any]:
        async with slots:
            began = time.perf_counter()
            answer = await s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(body)
            )
            latencies.append(time.perf_counter() - began)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    done = await asyncio.gather(*(part(n, body) for n, body in enumerate(parts, 1)))
    await s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})
    return latencies


async def run(load: Workload, args: argparse.Namespace) -> Result:
    payloads = Payloads()
    # Parts of tusd-py's part size (8 MiB: the full workloads' PATCH size, so the same pieces).
    pieces = {u: list(payloads.chunks(u, load.size, args.part_size)) for u in range(load.uploads)}
    expected = {u: payloads.sha256(u, load.size, args.part_size) for u in range(load.uploads)}
    session = get_session()
    config = AioConfig(s3={"addressing_style": "path"}, max_pool_connections=max(args.part_concurrency, 16))
    async with session.create_client(
        "s3",
        endpoint_url=args.endpoint,
        region_name=args.region,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        config=config,
    ) as s3:
        slots = asyncio.Semaphore(args.part_concurrency)
        in_flight = asyncio.Semaphore(load.in_flight)
        errors: list[str] = []

        async def one(u: int) -> list[float]:
            async with in_flight:
                try:
                    return await upload(s3, args.bucket, f"limit-{u}", pieces[u], slots)
                except Exception as exc:  # reported, not raised: the result says what failed
                    errors.append(f"upload {u}: {type(exc).__name__}: {exc}")
                    return []

        cpu_before = time.process_time()
        began = time.perf_counter()
        latencies = [x for per in await asyncio.gather(*(one(u) for u in range(load.uploads))) for x in per]
        seconds = time.perf_counter() - began
        client_cpu = time.process_time() - cpu_before
        if args.pause_before_verify:
            print(json.dumps({"phase": "uploaded"}), flush=True)
            await asyncio.to_thread(sys.stdin.readline)
        problems = list(errors)
        for u in range(load.uploads):
            if problems:
                break
            answer = await s3.get_object(Bucket=args.bucket, Key=f"limit-{u}")
            hasher = hashlib.sha256()
            body = answer["Body"]
            async with body:  # releases the connection
                async for block in body.iter_chunks(MiB):
                    hasher.update(block)
            if hasher.hexdigest() != expected[u]:
                problems.append(f"upload {u}: sha256 differs")
    moved = load.size * load.uploads
    return Result(
        workload=load.name,
        uploads=load.uploads,
        bytes=moved,
        seconds=seconds,
        mib_s=moved / MiB / seconds,
        uploads_s=load.uploads / seconds,
        patch_p50_ms=percentile(latencies, 0.5) * 1000,
        patch_p99_ms=percentile(latencies, 0.99) * 1000,
        patches=len(latencies),
        post_p50_ms=0.0,
        errors=problems[:5],
        verified=f"FAILED: {problems[0]}" if problems else "ok (sha256 via S3 GET)",
        client_cpu_s=client_cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--part-size", type=int, default=8 * MiB)
    parser.add_argument("--part-concurrency", type=int, default=4)
    parser.add_argument("--pause-before-verify", action="store_true")
    args = parser.parse_args()
    if not args.endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        parser.error("the benchmark only talks to loopback addresses")
    result = asyncio.run(run(workload(args.workload, args.quick), args))
    json.dump(asdict(result), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
