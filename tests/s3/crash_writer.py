"""Run by tests/s3/test_s3_crash.py in a subprocess that the test SIGKILLs mid-upload.

Usage: python -m tests.s3.crash_writer CONFIG_JSON UPLOAD_ID SIZE SEED PATCH_SIZE

Uploads the deterministic payload from the upload's durable offset to its end the way the core
does (load the info, PATCH, repeat), prints ``offset N`` after every PATCH, then finishes.
"""

from __future__ import annotations

import asyncio
import sys
import time

import msgspec

from storage_backends.s3 import S3Store
from storage_backends.s3_config import S3Config
from tests.s3.s3_support import chunks, payload


async def main(config_json: str, upload_id: str, size: int, seed: int, patch_size: int) -> None:
    store = S3Store(msgspec.json.decode(config_json, type=S3Config))
    await store.start()
    data = payload(size, seed)
    try:
        info = await store.get_info(upload_id)
        while info.offset < size:
            end = min(info.offset + patch_size, size)
            await store.write(info, chunks(data[info.offset : end], 128 * 1024))
            info = await store.get_info(upload_id)
            print(f"offset {info.offset}", flush=True)
        info.finished_at, info.sha256 = time.time(), "00" * 32
        await store.finish(info)
        print("done", flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    config_json, upload_id, size, seed, patch_size = sys.argv[1:6]
    asyncio.run(main(config_json, upload_id, int(size), int(seed), int(patch_size)))
