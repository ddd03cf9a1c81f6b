"""The S3 calls the backend makes, one method per call, with key naming and error mapping.

Every method is exactly one S3 request (the request budgets in ``s3.py`` are counted in these
units), raises :class:`UploadNotFound` only where the caller asked for it, and maps any other
failure through :func:`storage_backends.s3_errors.s3_call`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError

from storage_backends.s3_config import S3Config
from storage_backends.s3_errors import is_not_found, is_precondition_failed, s3_call
from storage_backends.s3_ledger import Part
from storage_backends.s3_metrics import instrument
from tusd_py.model.fencing import FenceLost
from tusd_py.model.storage_errors import StorageError, UploadNotFound
from tusd_py.model.upload import UPLOAD_ID

INFO_SUFFIX = ".info"
SEGMENT_INFIX = ".part."
READ_BLOCK = 256 * 1024
# Hashing a multi-MiB part takes milliseconds: off the event loop (hashlib releases the GIL).
_HASH_IN_THREAD = 1024 * 1024
_STREAM_ABOVE = 256 * 1024


#: A request body: a buffer, or (for large ones, see :func:`part_buffer`) a BytesIO read from its start.
Body = bytes | bytearray | io.BytesIO


def part_buffer(size: int) -> io.BytesIO:
    """A zeroed buffer of ``size`` bytes to fill through ``getbuffer()`` and send as a body.

    Given one big bytes-like body, aiohttp (on Python 3.11) slices it, joins it with the headers,
    and asyncio's transport buffers what the socket did not take: up to three more copies of every
    part in flight (tracemalloc: 19.5 MiB for one 8 MiB part). A BytesIO is sent 64 KiB at a time
    with back-pressure, and filled in place it is never copied (8 MiB for the same part); botocore
    hashes it for the signature and rewinds it for a retry.
    """
    buffer = io.BytesIO()
    if size:  # a BytesIO grows by writing, not by truncate(): write its last byte
        buffer.seek(size - 1)
        buffer.write(b"\0")
        buffer.seek(0)
    return buffer


def _sendable(body: Body) -> Body:
    if isinstance(body, io.BytesIO):
        body.seek(0)
        return body
    return io.BytesIO(body) if len(body) > _STREAM_ABOVE else body  # one copy instead of three


def body_size(body: Body) -> int:
    return body.getbuffer().nbytes if isinstance(body, io.BytesIO) else len(body)


async def _md5_of(body: Body) -> str:
    return await asyncio.to_thread(_md5_b64, body) if body_size(body) > _HASH_IN_THREAD else _md5_b64(body)


def _md5_b64(body: Body) -> str:
    if isinstance(body, io.BytesIO):
        with body.getbuffer() as view:
            return base64.b64encode(hashlib.md5(view).digest()).decode()
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def _content_headers(content_type: str | None, disposition: str | None) -> dict[str, str]:
    """The object headers a later direct GET from the bucket serves."""
    headers: dict[str, str] = {}
    if content_type:
        headers["ContentType"] = content_type
    if disposition:
        headers["ContentDisposition"] = disposition
    return headers


class S3Objects:
    """An aioboto3 S3 client bound to one bucket and prefix."""

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.bucket = config.bucket
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._opening = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------------------
    async def client(self) -> Any:
        """The client, opened on first use (``start()`` opens it; lazy opening keeps helpers usable)."""
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    self._client = await self._open()
        return self._client

    async def _open(self) -> Any:
        cfg = self.config
        session = aioboto3.Session(
            aws_access_key_id=cfg.access_key_id,
            aws_secret_access_key=cfg.secret_access_key,
            region_name=cfg.region,
        )
        boto_config = AioConfig(
            # The Content-MD5 below is the integrity check every S3-compatible server makes
            # (SeaweedFS ignores a wrong x-amz-content-sha256: tests/s3/test_s3_integrity.py).
            # botocore would also SHA-256 every body on the event loop to sign it over plain http
            # (over https it already sends UNSIGNED-PAYLOAD beside a Content-MD5): a second pass
            # over every byte for no check, so it is off.
            s3={"addressing_style": "path" if cfg.path_style else "auto", "payload_signing_enabled": False},
            retries={"max_attempts": cfg.max_attempts, "mode": "standard"},
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            max_pool_connections=max(10, 2 * cfg.part_concurrency),
            # Content-MD5 on every body we send already proves integrity and works on every
            # S3-compatible server; botocore's newer trailing CRC checksums do not, everywhere.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            session.client("s3", endpoint_url=cfg.endpoint_url, config=boto_config)
        )
        self._stack = stack
        instrument(client)
        return client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    # -- keys ----------------------------------------------------------------------------------
    def data_key(self, upload_id: str) -> str:
        # The core validates ids first; checking again keeps keys inside the prefix on their own.
        if not UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(upload_id)
        return self.config.prefix + upload_id

    def info_key(self, upload_id: str) -> str:
        return self.data_key(upload_id) + INFO_SUFFIX

    def segment_key(self, upload_id: str, start: int) -> str:
        # Named by start offset: a retried write of the same bytes overwrites its own orphan.
        return f"{self.data_key(upload_id)}{SEGMENT_INFIX}{start:015d}"

    def segment_prefix(self, upload_id: str) -> str:
        return self.data_key(upload_id) + SEGMENT_INFIX

    # -- plain objects -------------------------------------------------------------------------
    async def head_bucket(self) -> None:
        client = await self.client()
        await client.head_bucket(Bucket=self.bucket)

    async def _get_object(self, key: str, if_match: str | None) -> Any:
        """GetObject's response; a missing object is UploadNotFound, an ETag mismatch a StorageError."""
        client = await self.client()
        extra = {"IfMatch": if_match} if if_match is not None else {}
        try:
            return await client.get_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as exc:
            if is_not_found(exc):
                raise UploadNotFound(key) from None
            if is_precondition_failed(exc):
                raise StorageError(f"{key} changed behind this server's back (ETag mismatch)") from None
            raise

    async def get_bytes(self, key: str, *, if_match: str | None = None) -> bytes:
        """The whole object; :class:`UploadNotFound` if it does not exist."""
        data, _ = await self.get_with_etag(key, if_match=if_match)
        return data

    async def get_with_etag(self, key: str, *, if_match: str | None = None) -> tuple[bytes, str]:
        """The whole object and its ETag (for a conditional write of it later)."""
        with s3_call(f"reading {key}"):
            response = await self._get_object(key, if_match)
            body = response["Body"]
            async with body:  # releases the connection (the context value is aiohttp's response)
                data: bytes = await body.read()
        return data, str(response.get("ETag", ""))

    async def get_into(self, key: str, target: memoryview, *, if_match: str | None = None) -> None:
        """The whole object, copied into ``target`` as it arrives (no second copy of it in memory);
        the object must be exactly ``len(target)`` bytes. :class:`UploadNotFound` if it does not exist."""
        with s3_call(f"reading {key}"):
            response = await self._get_object(key, if_match)
            body = response["Body"]
            position = 0
            async with body:
                async for block in body.iter_chunks(READ_BLOCK):
                    if position + len(block) > len(target):
                        raise StorageError(f"{key} is longer than the {len(target)} bytes expected")
                    target[position : position + len(block)] = block
                    position += len(block)
        if position != len(target):
            raise StorageError(f"{key} has {position} bytes, not the {len(target)} expected")

    async def put_bytes(
        self,
        key: str,
        body: Body,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str | None = None,
        disposition: str | None = None,
    ) -> str:
        """Store an object; return its ETag. With ``if_none_match`` an existing key is refused; with
        ``if_match`` the write lands only over that very version (:class:`FenceLost` otherwise:
        another writer replaced or deleted it, so this writer no longer owns the object)."""
        client = await self.client()
        md5 = await _md5_of(body)
        extra = {"IfNoneMatch": "*"} if if_none_match else {}
        if if_match:
            extra["IfMatch"] = if_match
        extra.update(_content_headers(content_type, disposition))
        with s3_call(f"writing {key}"):
            try:
                response = await client.put_object(
                    Bucket=self.bucket, Key=key, Body=_sendable(body), ContentMD5=md5, **extra
                )
            except ClientError as exc:
                if if_none_match and is_precondition_failed(exc):
                    raise StorageError(f"{key} already exists") from None
                if if_match and is_precondition_failed(exc):
                    raise FenceLost(f"{key} was replaced or deleted by another writer; this write stops") from None
                raise
        return str(response["ETag"])

    async def head_size(self, key: str) -> int | None:
        client = await self.client()
        with s3_call(f"inspecting {key}"):
            try:
                response = await client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if is_not_found(exc):
                    return None
                raise
        return int(response["ContentLength"])

    async def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete up to 1,000 keys per request (missing keys are fine: deleting is idempotent)."""
        client = await self.client()
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            with s3_call("deleting objects"):
                await client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    async def delete_key(self, key: str) -> None:
        client = await self.client()
        with s3_call(f"deleting {key}"):
            await client.delete_object(Bucket=self.bucket, Key=key)

    async def list_keys(self, prefix: str) -> AsyncIterator[tuple[str, float]]:
        """(key, last-modified timestamp) of every object under ``prefix``."""
        client = await self.client()
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            with s3_call(f"listing {prefix!r}"):
                page = await client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, **extra)
            for item in page.get("Contents", []):
                yield str(item["Key"]), item["LastModified"].timestamp()
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def stream(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of an object with one ranged GetObject."""
        client = await self.client()
        with s3_call(f"reading {key}"):
            try:
                response = await client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
            except ClientError as exc:
                if is_not_found(exc):
                    raise UploadNotFound(key) from None
                raise
            body = response["Body"]
            async with body:
                received = 0
                async for block in body.iter_chunks(READ_BLOCK):
                    received += len(block)
                    yield block
        if received != end - start:
            raise StorageError(f"{key} is shorter than expected ({received} of {end - start} bytes)")

    # -- multipart -----------------------------------------------------------------------------
    async def create_multipart(self, key: str, *, content_type: str | None, disposition: str | None) -> str:
        client = await self.client()
        extra = _content_headers(content_type, disposition)
        with s3_call(f"creating the multipart upload {key}"):
            response = await client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
        return str(response["UploadId"])

    async def upload_part(self, key: str, multipart_id: str, number: int, body: Body) -> Part:
        client = await self.client()
        md5 = await _md5_of(body)
        size = body_size(body)
        with s3_call(f"uploading part {number} of {key}"):
            response = await client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=multipart_id,
                PartNumber=number,
                Body=_sendable(body),
                ContentMD5=md5,
            )
        return Part(size, str(response["ETag"]))

    async def copy_part(self, key: str, multipart_id: str, number: int, source: str, start: int, end: int) -> Part:
        client = await self.client()
        with s3_call(f"copying part {number} of {key} from {source}"):
            response = await client.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=multipart_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": source},
                CopySourceRange=f"bytes={start}-{end - 1}",
            )
        return Part(end - start, str(response["CopyPartResult"]["ETag"]))

    async def complete_multipart(self, key: str, multipart_id: str, parts: Sequence[Part]) -> None:
        """CompleteMultipartUpload; ``NoSuchUpload`` propagates as ClientError for the caller to judge."""
        client = await self.client()
        listing = [{"PartNumber": number, "ETag": part.etag} for number, part in enumerate(parts, start=1)]
        with s3_call(f"completing {key}"):
            try:
                await client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=multipart_id, MultipartUpload={"Parts": listing}
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                    raise MultipartGone(key) from exc
                raise

    async def abort_multipart(self, key: str, multipart_id: str) -> None:
        client = await self.client()
        with s3_call(f"aborting the multipart upload of {key}"):
            try:
                await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=multipart_id)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise

    async def list_multipart(self, prefix: str) -> AsyncIterator[tuple[str, str, float]]:
        """(key, multipart id, initiated timestamp) of every multipart upload under ``prefix``."""
        client = await self.client()
        markers: dict[str, str] = {}
        while True:
            with s3_call("listing multipart uploads"):
                page = await client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix, **markers)
            for item in page.get("Uploads", []):
                yield str(item["Key"]), str(item["UploadId"]), item["Initiated"].timestamp()
            if not page.get("IsTruncated"):
                return
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}


class MultipartGone(StorageError):
    """The multipart upload no longer exists: completed (by an earlier call) or aborted."""
