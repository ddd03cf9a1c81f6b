"""Errors once a response has started: the connection is cut, never a second response in the body.

Over real keep-alive sockets to a real server: a client that got a status line and headers must
either read the whole body and reuse the connection, or see the connection close early. A client
leaving mid-download is expected behaviour and is logged as such, without an error or traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from tests.client.raw import Connection
from tests.client.tus import TUS, id_of, upload
from tests.client.wait import until
from tests.http.production_server import ProductionServer, port_of
from tusd_py.config.values import Config
from tusd_py.server.app import make_app

BIG = 32 * 1024 * 1024  # far more than loopback socket buffers hold, so the server blocks mid-body
FILL = b"\xab"  # upload bytes that can never be mistaken for a status line


@pytest.fixture
async def server(aiohttp_client: Any, config: Config) -> AsyncIterator[TestClient]:
    yield await aiohttp_client(ProductionServer(make_app(config), host="127.0.0.1"))


async def test_storage_failure_mid_body_closes_the_connection(server: TestClient, storage_dir: Path) -> None:
    """The data file shrinks under a streaming GET: the read fails after the headers went out."""
    path = await upload(server, FILL * BIG, chunk=8 * 1024 * 1024)
    conn = await Connection.open(port_of(server), receive_buffer=16 * 1024)
    with capture_logs() as logs:
        await conn.request("GET", path, TUS)
        status, headers = await conn.head()
        assert status == 200 and int(headers["content-length"]) == BIG
        first = await conn.body(1024 * 1024)  # the server is now blocked writing the rest
        with open(storage_dir / id_of(path), "r+b") as data_file:
            data_file.truncate(2 * 1024 * 1024)
        rest = await conn.body(BIG)
        assert len(first) + len(rest) < BIG
        assert set(first + rest) == set(FILL)  # body bytes only: no second status line in it
        assert await conn.at_eof()
        await until(lambda: any(e["event"] == "response aborted after its headers" for e in logs))
    conn.close()
    aborted = next(e for e in logs if e["event"] == "response aborted after its headers")
    assert aborted["log_level"] == "warning" and "shorter than its recorded offset" in aborted["error"]
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]


async def test_client_leaving_mid_download_is_not_an_error(
    server: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    path = await upload(server, FILL * BIG, chunk=8 * 1024 * 1024)
    conn = await Connection.open(port_of(server), receive_buffer=16 * 1024)
    with capture_logs() as logs, caplog.at_level(logging.DEBUG):
        await conn.request("GET", path, TUS)
        assert (await conn.head())[0] == 200
        await conn.body(1024 * 1024)
        conn.abort()  # the client vanishes mid-body
        await until(lambda: any(e["event"] == "client disconnected mid-response" for e in logs))
        await asyncio.sleep(0.1)  # let aiohttp finish the request, where it would log a traceback
    left = next(e for e in logs if e["event"] == "client disconnected mid-response")
    assert left["log_level"] == "info" and "exc_info" not in left
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    # The server is fine: the next client downloads the whole upload.
    resp = await server.get(path)
    assert resp.status == 200 and len(await resp.read()) == BIG


async def test_get_racing_delete_never_desyncs_keep_alive(server: TestClient) -> None:
    """Either the whole body then a reusable connection, or a clean 404, or an early close."""
    size = 256 * 1024
    outcomes: set[str] = set()
    for _ in range(30):
        path = await upload(server, FILL * size)
        conn = await Connection.open(port_of(server), receive_buffer=16 * 1024)
        await conn.request("GET", path, TUS)
        delete = asyncio.ensure_future(server.delete(path, headers=TUS))
        status, headers = await conn.head()
        if status == 404:
            outcomes.add("404")
            await conn.body(int(headers["content-length"]))
        else:
            assert status == 200
            body = await conn.body(int(headers["content-length"]))
            assert set(body) <= set(FILL)
            if len(body) < size:
                outcomes.add("cut")
                assert await conn.at_eof()
                conn.close()
                assert (await delete).status == 204
                continue
            outcomes.add("whole")
        # Keep-alive intact: the next response on this connection starts with its own status line.
        await conn.request("HEAD", path, TUS)
        assert (await conn.head())[0] in (200, 404)
        conn.close()
        assert (await delete).status == 204
    assert outcomes  # which of them happened depends on timing; every one was checked
