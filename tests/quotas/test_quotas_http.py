"""Per-user quotas through the app: limits hold at the byte, and space comes back.

Each test runs on both ledgers: in memory (the default) and in PostgreSQL (``--database-url``).
"""

from __future__ import annotations

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from tests.client.tus import OCTET, TUS, path_of
from tests.tokens import bearer
from tusd_py.config.values import Config
from tusd_py.quotas.ledger import QuotaLimits, Usage, check_quota
from tusd_py.server.app import make_app


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def quota_config(request: pytest.FixtureRequest, auth_config: Config) -> Config:
    if request.param == "memory":
        return auth_config
    return msgspec.structs.replace(auth_config, database_url=request.getfixturevalue("database_url"))


@pytest.fixture
async def client(aiohttp_client, quota_config: Config) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(make_app(quota_config))  # type: ignore[no-any-return]


async def post(client: TestClient, user: str, **headers: str):  # type: ignore[no-untyped-def]
    return await client.post("/files/", headers={**TUS, **bearer(user), **headers})


async def test_byte_quota_exceeded_by_one_byte(client: TestClient) -> None:
    assert (await post(client, "alice", **{"Upload-Length": "600"})).status == 201
    over = await post(client, "alice", **{"Upload-Length": "401"})
    assert over.status == 413
    reason = await over.text()
    assert "1000 bytes per user" in reason and "400 left" in reason
    assert (await post(client, "alice", **{"Upload-Length": "400"})).status == 201  # exactly at the limit
    assert (await post(client, "bob", **{"Upload-Length": "1000"})).status == 201  # quotas are per user


async def test_unfinished_upload_count(client: TestClient) -> None:
    for _ in range(3):
        assert (await post(client, "alice", **{"Upload-Length": "1"})).status == 201
    over = await post(client, "alice", **{"Upload-Length": "1"})
    assert over.status == 413 and "at most 3 unfinished uploads" in await over.text()


async def test_finishing_frees_an_unfinished_slot_and_deleting_frees_bytes(client: TestClient) -> None:
    me = {**TUS, **bearer("alice")}
    paths = []
    for _ in range(3):
        resp = await post(client, "alice", **{"Upload-Length": "300"})
        paths.append(path_of(resp.headers["Location"]))
    assert (await client.patch(paths[0], headers={**me, **OCTET, "Upload-Offset": "0"}, data=b"x" * 300)).status == 204
    assert (await post(client, "alice", **{"Upload-Length": "100"})).status == 201  # slot free; 1000 bytes used
    assert (await post(client, "alice", **{"Upload-Length": "1"})).status == 413
    assert (await client.delete(paths[1], headers=me)).status == 204
    assert (await post(client, "alice", **{"Upload-Length": "300"})).status == 201


async def test_deferred_upload_is_capped_by_the_quota(client: TestClient) -> None:
    me = {**TUS, **bearer("alice")}
    resp = await post(client, "alice", **{"Upload-Defer-Length": "1"})
    path = path_of(resp.headers["Location"])
    assert (await client.patch(path, headers={**me, **OCTET, "Upload-Offset": "0"}, data=b"x" * 900)).status == 204
    over = await client.patch(path, headers={**me, **OCTET, "Upload-Offset": "900"}, data=b"x" * 101)
    assert over.status == 413 and "100 bytes left" in await over.text()
    declare = await client.patch(
        path, headers={**me, **OCTET, "Upload-Offset": "900", "Upload-Length": "1001"}, data=b""
    )
    assert declare.status == 413 and "quota exceeded" in await declare.text()
    ok = await client.patch(
        path, headers={**me, **OCTET, "Upload-Offset": "900", "Upload-Length": "1000"}, data=b"y" * 100
    )
    assert ok.status == 204


async def test_quota_ledger_rebuilt_after_restart(aiohttp_client, quota_config: Config) -> None:  # type: ignore[no-untyped-def]
    first = await aiohttp_client(make_app(quota_config))
    assert (await post(first, "alice", **{"Upload-Length": "900"})).status == 201
    await first.close()
    second = await aiohttp_client(make_app(quota_config))
    assert (await post(second, "alice", **{"Upload-Length": "101"})).status == 413


@pytest.mark.postgres
async def test_uploads_made_before_the_database_are_adopted_by_its_ledger(  # type: ignore[no-untyped-def]
    aiohttp_client, auth_config: Config, database_url: str
) -> None:
    memory = await aiohttp_client(make_app(auth_config))  # no --database-url yet
    assert (await post(memory, "alice", **{"Upload-Length": "900"})).status == 201
    await memory.close()
    shared = msgspec.structs.replace(auth_config, database_url=database_url)
    for _ in range(2):  # adopted once, however often instances start
        client = await aiohttp_client(make_app(shared))
        assert (await post(client, "alice", **{"Upload-Length": "101"})).status == 413
        await client.close()
    client = await aiohttp_client(make_app(shared))
    assert (await post(client, "alice", **{"Upload-Length": "100"})).status == 201


def test_check_quota_is_pure_and_unlimited_means_unlimited() -> None:
    check_quota(Usage(10**12, 10**6), QuotaLimits(None, None), add_bytes=10**12, add_unfinished=1)
    with pytest.raises(Exception):  # noqa: B017
        check_quota(Usage(5, 0), QuotaLimits(5, None), add_bytes=1, add_unfinished=0)
