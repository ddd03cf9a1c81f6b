"""A PATCH superseded by a newer request (lock takeover) is told so: its client reads the 423.

The stalled PATCH's body is unfinished when its handler returns; the server then reads and
discards what the client still sends (aiohttp's lingering close) instead of resetting the
connection under it, and nothing is logged as an error.
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

from storage_backends.file_io import WRITE_BATCH
from tests.client.raw import Connection
from tests.client.tus import OCTET, TUS, create, id_of, offset_of, patch
from tests.http.production_server import ProductionServer, port_of
from tusd_py.config.values import Config
from tusd_py.server.app import make_app

SIZE = 3 * 1024 * 1024


@pytest.fixture
async def server(aiohttp_client: Any, config: Config) -> AsyncIterator[TestClient]:
    yield await aiohttp_client(ProductionServer(make_app(config), host="127.0.0.1"))


@pytest.mark.parametrize("newcomer", ["HEAD", "PATCH"])
@pytest.mark.parametrize("client_goes_on", [False, True])
async def test_superseded_patch_gets_423_and_no_traceback(
    server: TestClient, storage_dir: Path, caplog: pytest.LogCaptureFixture, newcomer: str, client_goes_on: bool
) -> None:
    data = bytes(range(256)) * (SIZE // 256)
    path = await create(server, SIZE)
    sent = 1024 * 1024 + 7
    stalled = await Connection.open(port_of(server), receive_buffer=16 * 1024)
    headers = {**TUS, **OCTET, "Upload-Offset": "0"}
    with capture_logs() as logs, caplog.at_level(logging.DEBUG):
        await stalled.request("PATCH", path, headers, data, send=sent)  # then the client stalls
        # Less than one write batch is missing from disk: the handler has read all but the last one; the
        # rest is in its memory or the socket, which a takeover drains before it lets go.
        data_file = storage_dir / id_of(path)
        deadline = asyncio.get_running_loop().time() + 20
        for _ in range(2000):  # bounded by the deadline too
            if data_file.stat().st_size > sent - WRITE_BATCH or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.01)
        assert data_file.stat().st_size > sent - WRITE_BATCH
        if newcomer == "HEAD":
            assert await offset_of(server, path) == sent  # the takeover committed every byte
        else:
            resp = await patch(server, path, 0, data)
            assert resp.status == 409 and resp.headers["Upload-Offset"] == str(sent)
        if client_goes_on:
            # A client that did not notice and sends the rest of its body: discarded, not a reset.
            await stalled.send_body(data[sent:])
        status, reply_headers = await stalled.head()
        reason = await stalled.body(int(reply_headers["content-length"]))
        await asyncio.sleep(0.2)  # aiohttp finishes the request (lingering) here
    stalled.close()
    assert status == 423
    assert reason == b"a newer request for this upload took over; its bytes so far are kept\n"
    assert await offset_of(server, path) == sent
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], [
        r.getMessage() for r in caplog.records
    ]
    assert (await patch(server, path, sent, data[sent:])).status == 204
    assert await (await server.get(path, headers=TUS)).read() == data
