"""PostgreSQL stopped and started again (pg_ctl) under a running tusd-py: 503s with a reason while it
is down, no acknowledged byte lost, PATCH to existing uploads keeps working, and the finished
upload is recorded and processed once it is back, without restarting tusd-py.

The cluster is this test's own (a restart would disturb the session's shared one).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from conformance.postgres_server import PostgresServer, find_pg_bin
from tests.postgres.instances import TUS, create, fetch, instances, wait_until_completed
from tests.real_parts import part_missing
from tests.tokens import bearer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

UNREACHABLE = "the state database (PostgreSQL) is unreachable; retry later"


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        part_missing("PostgreSQL server binaries are missing (Debian package postgresql; make test installs it)")
    with PostgresServer(bin_dir) as server:
        yield server


async def _patch(session: aiohttp.ClientSession, url: str, offset: int, data: bytes) -> aiohttp.ClientResponse:
    headers = {
        **TUS,
        **bearer("alice"),
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    async with session.patch(url, headers=headers, data=data) as resp:
        await resp.read()
        return resp


async def test_postgres_restart_while_uploads_run(tmp_path: Path, own_postgres: PostgresServer) -> None:
    database_url = own_postgres.create_database("tusd")
    data = os.urandom(3 * 1024 * 1024)
    half = len(data) // 2
    with instances(1, tmp_path / "data", database_url, "--job-lease", "5") as (server,):
        async with aiohttp.ClientSession() as session:
            made = await create(session, server, "alice", len(data))
            assert made.status == 201
            url = made.headers["Location"]
            upload_id = url.rsplit("/", 1)[1]
            assert (await _patch(session, url, 0, data[:half])).status == 204

            own_postgres.stop()
            try:
                refused = await create(session, server, "alice", 10)
                assert refused.status == 503
                async with session.post(server.url, headers={**TUS, **bearer("alice"), "Upload-Length": "10"}) as resp:
                    assert resp.status == 503 and resp.headers["Content-Type"].startswith("text/plain")
                    assert (await resp.text()).strip() == UNREACHABLE and resp.headers["Retry-After"]
                api = server.url.replace("/files/", "/api/recordings")
                async with session.get(api, headers=bearer("alice")) as resp:
                    problem = await resp.json(content_type=None)  # the API answers errors as RFC 9457 documents
                    assert (
                        resp.status == 503
                        and problem["detail"] == UNREACHABLE
                        and problem["code"] == "state-store-unavailable"
                    )
                # The bytes of an existing upload need no database: the rest arrives and is kept.
                rest = await _patch(session, url, half, data[half:])
                assert rest.status == 204 and rest.headers["Upload-Offset"] == str(len(data))
                async with session.head(url, headers={**TUS, **bearer("alice")}) as head:
                    assert head.status == 200 and head.headers["Upload-Offset"] == str(len(data))
            finally:
                own_postgres.start()  # same port, same data

            # Back by itself: no restart of tusd-py. Creation works again (bounded wait for the
            # pool to reconnect), and the upload that finished during the outage gets recorded.
            for _ in range(100):
                again = await create(session, server, "alice", 10)
                if again.status == 201:
                    break
                assert again.status == 503
                await asyncio.sleep(0.2)
            assert again.status == 201
            (recording,) = await wait_until_completed(database_url, [upload_id], within=90)
            assert recording["offset"] == len(data)
            async with session.get(url, headers={**TUS, **bearer("alice")}) as got:
                assert got.status == 200 and await got.read() == data  # byte-identical
            (usage,) = await fetch(database_url, "SELECT bytes, unfinished FROM quota_usage WHERE owner = 'alice'")
            assert usage["bytes"] == len(data) + 10 and usage["unfinished"] == 1  # the finished one settled
        assert "Traceback" not in server.logs()
