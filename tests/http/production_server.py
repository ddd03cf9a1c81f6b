"""A test server configured as production serves, for tests that read its answers off a raw socket."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer


class ProductionServer(TestServer):
    """As ``web.run_app`` serves (tusd_py.server.cli): a client disconnect does not cancel the handler,
    which instead meets the broken connection on its next write. (TestServer cancels.)"""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


def port_of(client: TestClient[Any, Any]) -> int:
    assert isinstance(client.server, TestServer) and client.server.port is not None
    return client.server.port
