"""/readyz through the real app: every part is exercised for real, a failing part is named in a 503."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from conformance.live_server import free_port
from conformance.redis_server import RedisServer, find_redis_server
from storage_backends.filesystem import FileStore
from tests.client.tus import create, patch, upload_files
from tests.real_parts import part_missing
from tests.tokens import SECRET
from tusd_py.config.values import Config
from tusd_py.http import ops_routes as ops
from tusd_py.http.ops_routes import PROBE_PREFIX
from tusd_py.model.upload import UploadInfo
from tusd_py.server.app import PIPELINE_KEY, make_app


def config_in(tmp_path: Path, **changes: object) -> Config:
    config = Config(storage_dir=str(tmp_path / "data"), state_db=str(tmp_path / "state.sqlite3"), workers=0)
    return msgspec.structs.replace(config, **changes)


async def test_ready_when_storage_and_state_store_work(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(config_in(tmp_path, jwt_secret=SECRET)))
    resp = await client.get("/readyz")  # public: no token
    assert resp.status == 200
    assert await resp.text() == "ready: storage ok, state store ok\n"
    assert resp.headers["Cache-Control"] == "no-store"
    assert upload_files(tmp_path / "data") == [], "the probe upload was left behind"


async def test_unwritable_storage_is_named_and_healthz_stays_up(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(config_in(tmp_path)))
    storage = tmp_path / "data"
    shutil.rmtree(storage)
    storage.write_text("not a directory any more")  # every write into it now fails, as on a lost mount
    resp = await client.get("/readyz")
    assert resp.status == 503
    text = await resp.text()
    assert text.startswith("not ready: storage: ") and text.endswith("\n"), text
    assert "state store" not in text
    assert str(tmp_path) not in text, "a public endpoint must not show server paths"
    assert (await client.get("/healthz")).status == 200


async def test_a_closed_state_store_is_named(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(config_in(tmp_path))
    client: TestClient = await aiohttp_client(app)
    await app[PIPELINE_KEY].store.close()
    resp = await client.get("/readyz")
    assert resp.status == 503
    text = await resp.text()
    assert text.startswith("not ready: state store: "), text
    assert "storage:" not in text


async def test_a_check_that_hangs_fails_within_the_timeout(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from tusd_py.http.ops_routes import run_check

    async def hang() -> None:
        await asyncio.sleep(30)

    result = await run_check("redis", hang, 0.05)
    assert result.part == "redis" and result.error == "no answer within 0.05 s"


@pytest.mark.redis
async def test_shared_upload_locks_are_checked_and_named(  # type: ignore[no-untyped-def]
    aiohttp_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops, "READY_FOR", 0.0)  # each probe below checks again
    if find_redis_server() is None:
        part_missing("redis-server (Debian package redis-server) is missing")
    with RedisServer(tmp_path / "redis") as redis:
        client: TestClient = await aiohttp_client(
            make_app(config_in(tmp_path, redis_url=redis.url, download_signing_key="k" * 32))
        )
        resp = await client.get("/readyz")
        assert resp.status == 200
        assert await resp.text() == "ready: storage ok, state store ok, upload locks ok\n"
        redis.stop()
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.text()).startswith("not ready: upload locks: failed ("), await resp.text()
        path = await create(client, 5)  # creating needs no lock: the upload exists, empty
        patched = await patch(client, path, 0, b"hello")
        assert patched.status == 503 and patched.headers["Retry-After"]
        assert "upload locks are unavailable" in await patched.text()


class ProbeCountingStore(FileStore):
    """The filesystem store, counting the readiness probe uploads it is asked to create."""

    probes = 0

    async def create(self, info: UploadInfo) -> None:
        if info.id.startswith(PROBE_PREFIX):
            self.probes += 1
        await super().create(info)


async def test_concurrent_probes_share_one_check_and_the_answer_is_kept(  # type: ignore[no-untyped-def]
    aiohttp_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_in(tmp_path)
    store = ProbeCountingStore(config.storage_dir)
    client: TestClient = await aiohttp_client(make_app(config, store=store))
    answers = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
    assert [resp.status for resp in answers] == [200] * 20
    assert store.probes == 1, "concurrent probes must share one round of checks"
    assert (await client.get("/readyz")).status == 200
    assert store.probes == 1, "an answer younger than READY_FOR is reused"
    monkeypatch.setattr(ops, "READY_FOR", 0.0)  # the answer is now old: the next probe checks again
    assert (await client.get("/readyz")).status == 200
    assert store.probes == 2
    assert upload_files(tmp_path / "data") == []


async def test_a_failure_is_kept_as_briefly_and_then_checked_again(  # type: ignore[no-untyped-def]
    aiohttp_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(config_in(tmp_path))
    client: TestClient = await aiohttp_client(app)
    assert (await client.get("/readyz")).status == 200
    await app[PIPELINE_KEY].store.close()
    assert (await client.get("/readyz")).status == 200  # the kept answer, for up to READY_FOR
    monkeypatch.setattr(ops, "READY_FOR", 0.0)
    assert (await client.get("/readyz")).status == 503


async def test_readyz_is_answered_on_the_metrics_port_too(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    client: TestClient = await aiohttp_client(make_app(config_in(tmp_path, metrics_port=port)))
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/readyz") as resp:
        assert resp.status == 200
        assert await resp.text() == "ready: storage ok, state store ok\n"
        assert resp.headers["Cache-Control"] == "no-store"
    assert (await client.get("/readyz")).status == 200  # and still on the main port
