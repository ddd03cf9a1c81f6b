"""S3 failures: refusing to start, an unreachable endpoint, and faults in the middle of a PATCH.

An unreachable S3 is produced for real (a closed port; a TCP proxy that is shut mid-upload).
Only 5xx answers and a failure of one specific request are injected, through botocore's
``before-call`` event, because a real server cannot be made to fail exactly there.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from conformance.seaweed import SeaweedS3
from storage_backends.s3 import S3Store
from storage_backends.s3_config import S3Config
from storage_backends.s3_ledger import MIB
from tests.s3.conftest import make_config
from tests.s3.s3_support import chunks, payload, read_all
from tests.s3.test_s3_store import finish
from tusd_py.model.storage_errors import StorageError, StorageUnavailable
from tusd_py.model.upload import UploadInfo

pytestmark = pytest.mark.s3


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fast(config: S3Config, **overrides: Any) -> S3Config:
    values = {f: getattr(config, f) for f in config.__struct_fields__}
    values.update({"max_attempts": 1, "connect_timeout": 1.0, "read_timeout": 5.0, **overrides})
    return S3Config(**values)


async def test_start_refuses_unreachable_endpoint(s3_config: S3Config) -> None:
    store = S3Store(fast(s3_config, endpoint_url=f"http://127.0.0.1:{closed_port()}"))
    try:
        with pytest.raises(StorageError, match="cannot reach"):
            await store.start()
        with pytest.raises(StorageUnavailable):
            await store.get_info("x")
        with pytest.raises(StorageUnavailable):
            await store.create(UploadInfo(id="x", length=1))
    finally:
        await store.close()


async def test_start_refuses_wrong_credentials(seaweed: SeaweedS3) -> None:
    store = S3Store(make_config(seaweed, "p/", secret_access_key="not-the-secret"))
    try:
        with pytest.raises(StorageError, match="credentials"):
            await store.start()
    finally:
        await store.close()


async def test_start_refuses_missing_bucket(seaweed: SeaweedS3) -> None:
    store = S3Store(make_config(seaweed, "p/", bucket="no-such-bucket"))
    try:
        with pytest.raises(StorageError, match="does not exist"):
            await store.start()
    finally:
        await store.close()


class Proxy:
    """A TCP proxy to the S3 server that can be shut, cutting every connection: S3 goes away."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while block := await src.read(65536):
                    dst.write(block)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def shut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()


async def test_s3_vanishing_mid_upload_gives_503_and_keeps_the_offset(s3_config: S3Config, seaweed: SeaweedS3) -> None:
    proxy = Proxy(seaweed.s3_port)
    port = await proxy.start()
    store = S3Store(fast(s3_config, endpoint_url=f"http://127.0.0.1:{port}"))
    direct = S3Store(s3_config)
    data = payload(16 * MIB, seed=11)
    try:
        await store.create(UploadInfo(id="flaky", length=len(data)))
        info = await store.get_info("flaky")
        info.offset = await store.write(info, chunks(data[: 6 * MIB], MIB))

        async def body_then_outage() -> Any:
            yield data[6 * MIB : 7 * MIB]
            await proxy.shut()
            for start in range(7 * MIB, len(data), MIB):
                yield data[start : start + MIB]

        with pytest.raises(StorageUnavailable):
            await store.write(info, body_then_outage())
        info = await direct.get_info("flaky")
        assert info.offset == 6 * MIB  # nothing recorded that is not durably in S3
        info.offset = await direct.write(info, chunks(data[info.offset :], MIB))
        assert await read_all(direct, await finish(direct, "flaky")) == data
    finally:
        await store.close()
        await direct.close()


def inject(store: S3Store, operation: str, error: Exception, *, when: Any = None) -> list[int]:
    """Make the next matching S3 call raise ``error`` (once); returns a list the hook appends to."""
    fired: list[int] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == operation and not fired and (when is None or when(params)):
            fired.append(1)
            raise error

    store.objects._client.meta.events.register("before-call.s3", hook)
    return fired


def server_error(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, operation)


@pytest.mark.parametrize(
    ("operation", "error", "when"),
    [
        ("UploadPart", server_error("UploadPart"), lambda p: p["query_string"].get("partNumber") == 2),
        ("UploadPart", EndpointConnectionError(endpoint_url="http://s3"), None),
        ("PutObject", server_error("PutObject"), lambda p: p["url_path"].endswith(".info")),
        ("PutObject", server_error("PutObject"), lambda p: ".part." in p["url_path"]),
    ],
    ids=["5xx-on-second-part", "unreachable-on-part", "5xx-on-info-commit", "5xx-on-tail-segment"],
)
async def test_fault_mid_patch(s3_store: S3Store, operation: str, error: Exception, when: Any) -> None:
    data = payload(14 * MIB + 9, seed=12)
    await s3_store.create(UploadInfo(id="fault", length=len(data)))
    info = await s3_store.get_info("fault")
    fired = inject(s3_store, operation, error, when=when)
    with pytest.raises(StorageUnavailable):
        await s3_store.write(info, chunks(data[: 12 * MIB], 256 * 1024))
    assert fired
    info = await s3_store.get_info("fault")
    # Only parts that landed before the failure, in order, may be recorded; never the bytes after.
    assert info.offset in (0, 5 * MIB, 10 * MIB)
    info.offset = await s3_store.write(info, chunks(data[info.offset :], 256 * 1024))
    assert await read_all(s3_store, await finish(s3_store, "fault")) == data
