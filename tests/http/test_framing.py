"""Response framing follows the wire method, whatever the override: every wire method x override
on a real socket, then a second request on the same keep-alive connection must get its own answer.

The upload's content is itself an HTTP response: if a body ever followed a HEAD answer, h11 would
parse it as the answer to the second request, whose X-Request-ID it cannot know.
"""

from __future__ import annotations

import asyncio
import itertools

import h11
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from tests.client.tus import OCTET, TUS
from tests.http.test_gate_routes import CONTENT, OVERRIDES, WIRE_METHODS
from tests.tokens import bearer
from tusd_py.config.values import Config
from tusd_py.server.app import make_app


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: h11.Connection, request: h11.Request, body: bytes
) -> tuple[h11.Response, bytes]:
    writer.write(conn.send(request))
    if body:
        writer.write(conn.send(h11.Data(data=body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()
    response: h11.Response | None = None
    data = b""
    for _ in range(10_000):  # bounded: each turn consumes bytes or an event
        event = conn.next_event()
        if event is h11.NEED_DATA:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            conn.receive_data(chunk)
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            data += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            return response, data
        elif isinstance(event, h11.ConnectionClosed):
            raise AssertionError("the connection closed without a complete response")
    raise AssertionError("no end of message")


@pytest.fixture(params=["auth-on", "auth-off"])
async def server(auth_config: Config, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    unlimited = msgspec.structs.replace(auth_config, quota_bytes=0, quota_unfinished=0)
    if request.param == "auth-off":
        unlimited = msgspec.structs.replace(unlimited, jwt_secret=None)
    srv = TestServer(make_app(unlimited), host="127.0.0.1")
    await srv.start_server()
    yield srv
    await srv.close()


async def test_every_wire_method_and_override_keeps_the_connection_in_step(server: TestServer) -> None:
    host = f"127.0.0.1:{server.port}"
    alice = {**TUS, **bearer("alice")}
    combinations = list(itertools.product(WIRE_METHODS, OVERRIDES))
    paths = []  # a fresh finished upload per combination: an overridden DELETE must not hide the next case
    async with server_client(server) as http:
        for _ in combinations:
            resp = await http.post("/files/", headers={**alice, "Upload-Length": str(len(CONTENT))})
            path = "/files/" + resp.headers["Location"].rsplit("/", 1)[1]
            resp = await http.patch(path, headers={**alice, **OCTET, "Upload-Offset": "0"}, data=CONTENT)
            assert resp.status == 204
            paths.append(path)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    conn = h11.Connection(h11.CLIENT)
    try:
        for number, ((wire, override), path) in enumerate(zip(combinations, paths, strict=True)):
            headers = [("Host", host), *alice.items()]
            if override is not None:
                headers.append(("X-HTTP-Method-Override", override))
            body = b"" if wire in ("GET", "HEAD", "OPTIONS") else b"x"
            headers.append(("Content-Length", str(len(body))))
            first, _ = await exchange(
                reader, writer, conn, h11.Request(method=wire, target=path, headers=headers), body
            )
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                conn = h11.Connection(h11.CLIENT)
                continue
            conn.start_next_cycle()
            sentinel = f"sentinel-{number}"
            second, text = await exchange(
                reader, writer, conn,
                h11.Request(method="GET", target="/healthz", headers=[("Host", host), ("X-Request-ID", sentinel)]),
                b"",
            )  # fmt: skip
            where = f"{wire} override={override} (first answer {first.status_code})"
            assert second.status_code == 200 and text == b"ok\n", where
            assert dict(second.headers)[b"x-request-id"] == sentinel.encode(), where
            conn.start_next_cycle()
    finally:
        writer.close()


def server_client(server: TestServer):  # type: ignore[no-untyped-def]
    import aiohttp

    return aiohttp.ClientSession(base_url=str(server.make_url("/")))
