"""Response framing follows the wire method, whatever the override: every wire method x override
on a real socket, then a second request on the same keep-alive connection must get its own answer.

The upload's content is itself an HTTP response: if a body ever followed a HEAD answer, h11 would
parse it as the answer to the second request, whose X-Request-ID it cannot know.
"""

from __future__ import annotations

import itertools

import msgspec
import pytest
from aiohttp.test_utils import TestServer

from tests.client.raw import Connection
from tests.client.tus import TUS, session, upload
from tests.http.test_gate_routes import CONTENT, OVERRIDES, WIRE_METHODS
from tests.tokens import bearer
from tusd_py.config.values import Config
from tusd_py.server.app import make_app


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
    alice = bearer("alice")
    combinations = list(itertools.product(WIRE_METHODS, OVERRIDES))
    # A fresh finished upload per combination: an overridden DELETE must not hide the next case.
    async with session(str(server.make_url("/"))) as http:
        paths = [await upload(http, CONTENT, auth=alice) for _ in combinations]
    conn = await Connection.open(server.port)
    try:
        for number, ((wire, override), path) in enumerate(zip(combinations, paths, strict=True)):
            headers = {**TUS, **alice}
            if override is not None:
                headers["X-HTTP-Method-Override"] = override
            body = b"" if wire in ("GET", "HEAD", "OPTIONS") else b"x"
            await conn.request(wire, path, {**headers, "Content-Length": str(len(body))}, body)
            first = await conn.response()
            assert first.status is not None, f"{wire} override={override}: the connection closed without an answer"
            if not conn.reusable:
                await conn.aclose()
                conn = await Connection.open(server.port)
                continue
            sentinel = f"sentinel-{number}"
            await conn.request("GET", "/healthz", {"X-Request-ID": sentinel})
            second = await conn.response()
            where = f"{wire} override={override} (first answer {first.status})"
            assert second.status == 200 and second.body == b"ok\n", where
            assert second.headers["x-request-id"] == sentinel, where
    finally:
        await conn.aclose()
