"""S3 requests per operation, counted on the real client (botocore ``before-call`` events).

The issue's budgets: HEAD (get_info) at most one S3 request; a PATCH of whole parts one
UploadPart per part plus one info write; ListParts never on the request path.
"""

from __future__ import annotations

import time

import pytest

from storage_backends.base import UploadInfo
from storage_backends.s3 import S3Store
from storage_backends.s3_ledger import MIB
from tests.s3.s3_support import S3Calls, chunks, payload, read_all

pytestmark = pytest.mark.s3


async def test_request_budgets(s3_store: S3Store) -> None:
    calls = await S3Calls().attach(s3_store)
    size = 16 * MIB + 5
    data = payload(size)
    measured: dict[str, dict[str, int]] = {}

    def take(name: str) -> dict[str, int]:
        measured[name] = dict(calls.ops)
        calls.reset()
        return measured[name]

    await s3_store.create(UploadInfo(id="budget", length=size))
    assert take("create") == {"CreateMultipartUpload": 1, "PutObject": 1}

    info = await s3_store.get_info("budget")
    assert take("get_info") == {"GetObject": 1}

    # Two whole parts in one PATCH.
    info.offset = await s3_store.write(info, chunks(data[: 10 * MIB], 256 * 1024))
    assert take("write 2 whole parts") == {"UploadPart": 2, "PutObject": 1}

    # A PATCH below a part: one tail segment and the info.
    info.offset = await s3_store.write(info, chunks(data[10 * MIB : 11 * MIB], 256 * 1024))
    assert take("write 1 MiB (tail segment)") == {"PutObject": 2}
    info.offset = await s3_store.write(info, chunks(data[11 * MIB : 12 * MIB], 256 * 1024))
    take("write 1 MiB (tail segment) #2")

    # A PATCH that fills the part the two segments started: the tail is promoted, once.
    info.offset = await s3_store.write(info, chunks(data[12 * MIB : 15 * MIB], 256 * 1024))
    assert take("write promoting a 2-segment tail") == {
        "GetObject": 2,
        "UploadPart": 1,
        "PutObject": 1,
        "DeleteObjects": 1,
    }

    # The last bytes: the last (short) part goes straight into the multipart upload.
    info.offset = await s3_store.write(info, chunks(data[15 * MIB :], 256 * 1024))
    assert take("write last short part") == {"UploadPart": 1, "PutObject": 1}

    info = await s3_store.get_info("budget")
    take("get_info")
    info.finished_at, info.sha256 = time.time(), "ab" * 32
    await s3_store.finish(info)
    # finish trusts the ledger of the info the core hands it (just loaded under the lock).
    assert take("finish") == {"CompleteMultipartUpload": 1, "PutObject": 1}

    info = await s3_store.get_info("budget")
    take("get_info")
    assert await read_all(s3_store, info, 100, 200) == data[100:200]
    assert take("read range (finished)") == {"GetObject": 1}

    await s3_store.terminate("budget")
    assert take("terminate") == {
        "GetObject": 1,
        "DeleteObject": 1,
        "AbortMultipartUpload": 1,
        "ListObjectsV2": 1,
        "DeleteObjects": 1,
    }
    for name, ops in measured.items():
        assert "ListParts" not in ops
        print(f"{name}: {sum(ops.values())} requests {ops}")
