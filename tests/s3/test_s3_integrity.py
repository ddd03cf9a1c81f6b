"""Bytes damaged between tusd-py and S3 are refused by S3, never stored.

Every body tusd-py sends carries a Content-MD5, the check every S3-compatible server makes (a
wrong signed ``x-amz-content-sha256``, the other candidate, SeaweedFS stores without a word: that
is why tusd-py signs no payload hash and keeps the MD5). A byte flipped after signing, through
botocore's ``before-send`` event, stands for damage in transit: a fault the real network on
loopback cannot produce. S3 must refuse the request, and the upload must keep only what S3
acknowledged, so a retry completes it byte-identical.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from storage_backends.s3 import S3Store
from storage_backends.s3_ledger import MIB
from tests.s3.s3_support import chunks, payload, read_all
from tests.s3.test_s3_store import finish
from tusd_py.model.storage_errors import StorageError
from tusd_py.model.upload import UploadInfo

pytestmark = pytest.mark.s3


def damage_next(store: S3Store, operation: str) -> list[tuple[str, str]]:
    """Flip one byte of the next ``operation`` request's body after it was signed; the list gets
    its URL and its x-amz-content-sha256."""
    damaged: list[tuple[str, str]] = []

    def hook(request: Any, event_name: str, **_: Any) -> None:
        if damaged or not event_name.endswith(f".{operation}") or not request.body:
            return
        body = request.body
        data = bytearray(body.getvalue() if isinstance(body, io.BytesIO) else body)
        data[len(data) // 2] ^= 0xFF
        request.body = bytes(data)
        signed = request.headers.get("X-Amz-Content-SHA256", b"")
        damaged.append((request.url, signed.decode() if isinstance(signed, bytes) else signed))

    store.objects._client.meta.events.register("before-send.s3", hook)
    return damaged


async def test_a_whole_object_damaged_in_transit_is_refused(s3_store: S3Store) -> None:
    data = payload(4096, seed=31)
    await s3_store.create(UploadInfo(id="small", length=len(data)))
    info = await s3_store.get_info("small")
    damaged = damage_next(s3_store, "PutObject")  # the data object: this upload completes below one part
    with pytest.raises(StorageError):
        await s3_store.write(info, chunks(data, 1024))
    assert damaged and damaged[0][0].endswith("/small")
    assert damaged[0][1] == "UNSIGNED-PAYLOAD"  # no second hash of the body, over plain http too
    info = await s3_store.get_info("small")
    assert info.offset == 0  # nothing S3 refused counts
    info.offset = await s3_store.write(info, chunks(data, 1024))
    assert await read_all(s3_store, await finish(s3_store, "small")) == data


async def test_a_part_damaged_in_transit_is_refused(s3_store: S3Store) -> None:
    data = payload(11 * MIB + 5, seed=32)
    await s3_store.create(UploadInfo(id="parts", length=len(data)))
    info = await s3_store.get_info("parts")
    damaged = damage_next(s3_store, "UploadPart")
    with pytest.raises(StorageError):
        await s3_store.write(info, chunks(data, 256 * 1024))
    assert damaged
    info = await s3_store.get_info("parts")
    assert info.offset in (0, 5 * MIB)  # only a part S3 acknowledged, never the damaged one
    info.offset = await s3_store.write(info, chunks(data[info.offset :], 256 * 1024))
    assert await read_all(s3_store, await finish(s3_store, "parts")) == data
