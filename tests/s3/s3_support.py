"""Helpers for the S3 tests: payloads, chunk streams, and counting the S3 requests a store makes."""

from __future__ import annotations

import io
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from storage_backends.s3 import S3Store
from storage_backends.s3_objects import INFO_SUFFIX
from tusd_py.model.upload import BodyEnded, EndReason, UploadInfo


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


async def chunks(data: bytes, size: int, *, fail_after: int | None = None) -> AsyncIterator[bytes]:
    """``data`` in ``size``-byte chunks; with ``fail_after``, the client vanishes after that many bytes."""
    sent = 0
    for start in range(0, len(data), size):
        if fail_after is not None and sent >= fail_after:
            raise BodyEnded(EndReason.CLIENT_GONE, "client went away")
        piece = data[start : start + size]
        sent += len(piece)
        yield piece
    if fail_after is not None:
        raise BodyEnded(EndReason.CLIENT_GONE, "client went away")


async def read_all(store: S3Store, info: UploadInfo, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([block async for block in store.read(info, start, end)])


class S3Calls:
    """Counts S3 API calls per operation and data bytes sent, via botocore's ``before-call`` event
    (emitted once per API call, before retries), on a started store's real client."""

    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()
        self.data_bytes = 0  # bodies of UploadPart and of PutObject for non-info objects
        self.info_bytes = 0

    async def attach(self, store: S3Store) -> S3Calls:
        client = await store.objects.client()
        client.meta.events.register("before-call.s3", self._on_call)
        return self

    def _on_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.ops[model.name] += 1
        if model.name not in ("UploadPart", "PutObject"):
            return
        body = params.get("body")
        if isinstance(body, io.BytesIO):  # botocore wraps PutObject's bytes
            size = len(body.getvalue())
        elif isinstance(body, bytes | bytearray):
            size = len(body)
        else:
            raise AssertionError(f"unexpected body type {type(body)}")
        if model.name == "PutObject" and str(params.get("url_path", "")).endswith(INFO_SUFFIX):
            self.info_bytes += size
        else:
            self.data_bytes += size

    def reset(self) -> None:
        self.ops.clear()
        self.data_bytes = self.info_bytes = 0

    @property
    def total(self) -> int:
        return sum(self.ops.values())
