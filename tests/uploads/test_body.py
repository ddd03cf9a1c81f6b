"""BodyStream: every byte that reached the server is yielded, whatever ends the stream."""

from __future__ import annotations

import asyncio
import hashlib
from unittest import mock

import pytest
from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol

from tusd_py.model.upload import BodyEnded, EndReason
from tusd_py.uploads.body import BodyStream


def reader(limit: int = 2**16) -> StreamReader:
    """A request body stream as aiohttp's server builds it, on a connected protocol."""
    loop = asyncio.get_running_loop()
    protocol = BaseProtocol(loop)
    protocol.connection_made(mock.Mock(spec=asyncio.Transport))
    return StreamReader(protocol, limit, loop=loop)


async def collect(stream: BodyStream) -> tuple[bytes, BaseException | None]:
    got = []
    try:
        async for chunk in stream:
            got.append(chunk)
    except Exception as exc:  # the tests assert which
        return b"".join(got), exc
    return b"".join(got), None


async def test_bytes_buffered_when_the_connection_breaks_are_kept() -> None:
    content = reader()
    content.feed_data(b"a" * 1000)
    content.feed_data(b"b" * 500)
    content.set_exception(ConnectionResetError("gone"))  # aiohttp does this on connection loss
    data, error = await collect(BodyStream(content, max_bytes=10_000, idle_timeout=5))
    assert data == b"a" * 1000 + b"b" * 500
    assert isinstance(error, BodyEnded)


async def test_observers_see_every_yielded_byte_even_on_error() -> None:
    content = reader(limit=2**22)  # the whole payload buffered at once, as if the server fell behind
    payload = bytes(range(256)) * 5000
    for i in range(0, len(payload), 4096):
        content.feed_data(payload[i : i + 4096])
    content.set_exception(ConnectionResetError("gone"))
    hasher = hashlib.sha256()
    data, _ = await collect(BodyStream(content, max_bytes=10**9, idle_timeout=5, observers=[hasher.update]))
    assert data == payload and hasher.digest() == hashlib.sha256(payload).digest()


async def test_body_over_the_limit_yields_what_fits_then_ends_too_long() -> None:
    content = reader()
    content.feed_data(b"x" * 10)
    content.feed_eof()
    data, error = await collect(BodyStream(content, max_bytes=4, idle_timeout=5))
    assert data == b"xxxx" and isinstance(error, BodyEnded) and error.reason is EndReason.TOO_LONG


async def test_idle_body_is_cut_after_the_timeout() -> None:
    content = reader()
    content.feed_data(b"start")
    data, error = await collect(BodyStream(content, max_bytes=100, idle_timeout=0.05))
    assert data == b"start" and isinstance(error, BodyEnded) and "no data" in str(error)


async def test_hand_over_ends_a_quiet_stream_but_keeps_a_flowing_one_going() -> None:
    quiet = reader()
    quiet.feed_data(b"q" * 100)
    stream = BodyStream(quiet, max_bytes=10_000, idle_timeout=30)
    task = asyncio.create_task(collect(stream))
    await asyncio.sleep(0.01)
    stream.hand_over()
    data, error = await asyncio.wait_for(task, 2)
    assert data == b"q" * 100 and isinstance(error, BodyEnded) and error.reason is EndReason.HANDED_OVER

    flowing = reader()
    stream = BodyStream(flowing, max_bytes=10_000, idle_timeout=30)
    task = asyncio.create_task(collect(stream))
    stream.hand_over()
    for _ in range(5):  # data keeps coming inside the grace period: the stream goes on
        flowing.feed_data(b"f" * 10)
        await asyncio.sleep(0.02)
    flowing.feed_eof()
    data, error = await asyncio.wait_for(task, 2)
    assert data == b"f" * 50 and error is None


@pytest.mark.parametrize("size", [0, 1, 70_000])
async def test_complete_body_ends_normally(size: int) -> None:
    content = reader()
    if size:
        content.feed_data(b"z" * size)
    content.feed_eof()
    with mock.patch("tusd_py.uploads.body.HANDOVER_GRACE", 0.01):
        data, error = await collect(BodyStream(content, max_bytes=10**6, idle_timeout=5))
    assert data == b"z" * size and error is None


async def test_an_ended_stream_leaves_the_request_body_readable() -> None:
    """Takeover and idle timeout end the read without poisoning aiohttp's StreamReader, so its
    lingering close can read and discard the rest of the body after the response (a poisoned
    reader made it log a traceback and reset the connection before the client read its 423)."""
    idle = reader()
    idle.feed_data(b"start")
    _, error = await collect(BodyStream(idle, max_bytes=100, idle_timeout=0.05))
    assert isinstance(error, BodyEnded)
    quiet = reader()
    stream = BodyStream(quiet, max_bytes=100, idle_timeout=30)
    task = asyncio.create_task(collect(stream))
    await asyncio.sleep(0.01)
    with mock.patch("tusd_py.uploads.body.HANDOVER_GRACE", 0.01):
        stream.hand_over()
        _, error = await asyncio.wait_for(task, 2)
    assert isinstance(error, BodyEnded) and error.reason is EndReason.HANDED_OVER
    for content in (idle, quiet):
        content.feed_data(b"rest of the body")
        content.feed_eof()
        assert await content.read() == b"rest of the body"
