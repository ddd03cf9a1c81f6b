"""The connection guard on real loopback sockets in this process: cap, header deadline, keep-alive."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from conformance.live_server import free_port
from tests.client.raw import raw_exchange
from tests.client.wait import until
from tusd_py.server.connections import GuardedSite, default_max_connections, raise_open_file_limit


def test_raise_open_file_limit_lifts_the_soft_limit_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 64 if hard == resource.RLIM_INFINITY else min(64, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        limit = raise_open_file_limit()
        now_soft, now_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert limit.was == low
        assert now_hard == hard
        assert limit.soft == now_soft
        if hard != resource.RLIM_INFINITY:
            assert now_soft == hard
        assert now_soft > low
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_default_cap_leaves_a_quarter_of_the_descriptors_free() -> None:
    assert default_max_connections(1024) == 768
    assert default_max_connections(256) == 192
    assert default_max_connections(1) == 1


class Server:
    def __init__(self, port: int, site: GuardedSite) -> None:
        self.port = port
        self.site = site

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def get(self) -> bytes:
        return await raw_exchange(self.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    options = {"max_connections": 3, "header_timeout": 0.5, "keepalive_timeout": 0.8, **getattr(request, "param", {})}

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello\n")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = GuardedSite(runner, "127.0.0.1", port, open_files=64, **options)
    await site.start()
    try:
        yield Server(port, site)
    finally:
        await runner.cleanup()


# Upper bounds only tell "closed" from "never closed": generous, so a loaded machine does not fail them.
NEVER = 30.0


async def closed_within(reader: asyncio.StreamReader, seconds: float = NEVER) -> bytes:
    """All the server sends until it closes; fails if it is still open after ``seconds``."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_connections_over_the_cap_get_503_and_service_returns_when_they_close(server: Server) -> None:
    idle = [await server.connect() for _ in range(3)]
    guard = server.site.guard
    assert guard is not None
    await until(lambda: guard.served == 3, seconds=NEVER)  # the three are accepted and counted
    refused = await server.get()
    assert refused.startswith(b"HTTP/1.1 503 "), refused
    assert b"Connection: close" in refused and b"Retry-After: 2" in refused
    assert refused.endswith(b"too many open connections, retry shortly\n")
    assert guard.served == 3
    for _, writer in idle:
        writer.close()
    await until(lambda: guard.served == 0, seconds=NEVER)
    assert (await server.get()).endswith(b"hello\n")


async def test_a_silent_connection_is_closed_after_the_header_timeout(server: Server) -> None:
    reader, writer = await server.connect()
    started = asyncio.get_running_loop().time()
    assert await closed_within(reader) == b""  # never sent a byte: closed without an answer
    assert asyncio.get_running_loop().time() - started > 0.4  # at the header timeout (0.5 s), not at once
    writer.close()


async def test_slow_headers_get_408_after_the_header_timeout(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    for _ in range(3):  # still dripping bytes: the deadline is for the whole header block
        await asyncio.sleep(0.1)
        writer.write(b"X-Drip: 1\r\n")
    answer = await closed_within(reader)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
    assert answer.endswith(b"request headers not received in time\n")
    writer.close()


# A deadline far above the pauses: however slowly this machine runs them, the request is within it.
@pytest.mark.parametrize("server", [{"header_timeout": 10.0}], indirect=True)
async def test_a_request_slower_than_nothing_but_within_the_deadline_is_served(server: Server) -> None:
    reader, writer = await server.connect()
    for piece in (b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n", b"\r\n"):
        writer.write(piece)
        await asyncio.sleep(0.1)
    assert (await closed_within(reader)).endswith(b"hello\n")
    writer.close()


@pytest.mark.parametrize("server", [{"header_timeout": 0.3, "keepalive_timeout": 1.2}], indirect=True)
async def test_idle_keepalive_closes_after_its_timeout_not_the_header_one(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"hello\n"), 3)
    assert head.startswith(b"HTTP/1.1 200")
    served = asyncio.get_running_loop().time()
    assert await closed_within(reader) == b""
    assert asyncio.get_running_loop().time() - served > 1.0  # the keep-alive timeout (1.2 s), not the header one
    writer.close()


@pytest.mark.parametrize("server", [{"header_timeout": 0.4, "keepalive_timeout": 5}], indirect=True)
async def test_a_second_request_started_slowly_on_a_kept_alive_connection_is_cut(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"hello\n"), 3)
    await asyncio.sleep(0.6)  # idle past the header timeout: that is keep-alive, still open
    writer.write(b"GET / HTTP/1.1\r\n")
    answer = await closed_within(reader)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    writer.close()
