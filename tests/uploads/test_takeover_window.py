"""A takeover that asks while the holder has the lock but no body stream yet (it is still reading
the upload, checking it, reserving quota) is not lost: the stream starts handed over."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.client.raw import Connection
from tests.client.tus import OCTET, TUS, create
from tests.client.wait import until
from tusd_py.config.values import Config
from tusd_py.server.app import SERVICE_KEY, make_app
from tusd_py.telemetry.metrics import REGISTRY

LOCK_TIMEOUT = 3.0


def _count(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_a_takeover_asked_before_the_holder_reads_its_body_is_not_lost(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """The PATCH is held between taking the lock and making its body stream (a fault injected in
    ``body_limit``, the last step before it); a HEAD asks for the lock right then. Before the fix
    the request went to no stream: the HEAD waited the whole lock timeout and reported offset 0
    while the stalled PATCH kept its lock (what tests/integration/test_multi_instance.py's takeover
    on S3 met on a loaded machine)."""
    config = Config(
        storage_dir=str(tmp_path / "data"), workers=0, sweep_interval=0, cleanup_interval=0, lock_timeout=LOCK_TIMEOUT
    )
    client: TestClient = await aiohttp_client(make_app(config))
    path = await create(client, 10)
    service = client.app[SERVICE_KEY]
    reached, gate = asyncio.Event(), asyncio.Event()
    body_limit = service.body_limit

    async def paused(*args: Any, **kwargs: Any) -> int:
        reached.set()
        await gate.wait()
        return await body_limit(*args, **kwargs)

    service.body_limit = paused  # type: ignore[method-assign]
    conn = await Connection.open(client.server.port)  # type: ignore[arg-type]
    try:
        headers = {**TUS, **OCTET, "Upload-Offset": "0", "Content-Length": "10"}
        await conn.request("PATCH", path, headers, b"abcdefghij", send=3)  # then the client stalls
        await asyncio.wait_for(reached.wait(), 10)  # the PATCH holds the lock, no body stream yet
        takeovers, timeouts = _count("tusd_py_lock_takeovers_total"), _count("tusd_py_lock_timeouts_total")
        head = asyncio.ensure_future(client.head(path, headers=TUS))
        await until(lambda: _count("tusd_py_lock_takeovers_total") > takeovers)  # the HEAD asked the holder
        gate.set()  # the HEAD has asked: now the PATCH goes on and makes its stream
        began = asyncio.get_running_loop().time()
        resp = await asyncio.wait_for(head, 2 * LOCK_TIMEOUT)
        assert resp.status == 200
        assert resp.headers["Upload-Offset"] == "3"  # the 3 bytes that arrived, kept when it let go
        assert _count("tusd_py_lock_timeouts_total") == timeouts  # handed over, not timed out
        assert asyncio.get_running_loop().time() - began < LOCK_TIMEOUT
        answer = await conn.response()
        assert answer.status is None or answer.status == 423
    finally:
        await conn.aclose()
