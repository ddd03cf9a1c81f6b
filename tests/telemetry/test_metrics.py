"""/metrics through the real app: tusd's metric names move with real uploads, quotas, locks and hooks.

Metrics are process-wide counters (as Prometheus expects), so each test compares a scrape taken
before with one taken after what it does.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from conformance.live_server import free_port
from tests.client.tus import OCTET, TUS, create, patch, processed_head
from tests.pipeline.statements import statements, touching
from tests.telemetry.scrape import parse, scrape, value
from tests.tokens import SECRET, bearer
from tusd_py.config.values import Config
from tusd_py.hooks import HookEvent, HookRegistry, HookType
from tusd_py.locks.locker import InProcessLocker, UploadLocked
from tusd_py.pipeline.models import Recording
from tusd_py.pipeline.states import Status
from tusd_py.pipeline.store import MAX_PAGE_SIZE
from tusd_py.server.app import PIPELINE_KEY, make_app


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(storage_dir=str(tmp_path / "data"), workers=0)


async def test_an_upload_moves_tusds_counters(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(config))
    before = await scrape(client)
    path = await create(client, length=10)
    assert (await patch(client, path, 0, b"01234")).status == 204
    assert (await patch(client, path, 5, b"56789")).status == 204
    assert (await client.head("/files/missing", headers=TUS)).status == 404
    assert (await client.delete(path, headers=TUS)).status == 204
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tusd_requests_total", method="POST") == 1
    assert delta("tusd_requests_total", method="PATCH") == 2
    assert delta("tusd_requests_total", method="DELETE") == 1
    assert delta("tusd_bytes_received_total") == 10
    assert delta("tusd_uploads_created_total") == 1
    assert delta("tusd_uploads_finished_total") == 1
    assert delta("tusd_uploads_terminated_total") == 1
    assert delta("tusd_errors_total", status="404", code="upload-not-found") == 1
    assert delta("tusd_py_patch_bytes_count") == 2
    assert delta("tusd_py_patch_bytes_sum") == 10
    assert delta("tusd_py_request_duration_seconds_count", method="PATCH", status="204") == 2


async def test_the_effective_method_is_counted_not_the_wire_method(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(config))
    path = await create(client, length=3)
    before = await scrape(client)
    resp = await client.post(
        path, headers={**TUS, **OCTET, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"}, data=b"abc"
    )
    assert resp.status == 204
    after = await scrape(client)
    assert (
        value(after, "tusd_requests_total", method="PATCH") - value(before, "tusd_requests_total", method="PATCH") == 1
    )


async def test_metrics_need_no_token_and_quota_refusals_are_counted(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    auth = msgspec.structs.replace(config, jwt_secret=SECRET, quota_unfinished=1)
    client: TestClient = await aiohttp_client(make_app(auth))
    before = await scrape(client)  # no Authorization header
    alice = {**TUS, **bearer("alice")}
    assert (await client.post("/files/", headers={**alice, "Upload-Length": "5"})).status == 201
    refused = await client.post("/files/", headers={**alice, "Upload-Length": "5"})
    assert refused.status == 413
    after = await scrape(client)
    counted = value(after, "tusd_py_quota_refusals_total", limit="unfinished")
    assert counted - value(before, "tusd_py_quota_refusals_total", limit="unfinished") == 1
    assert value(after, "tusd_errors_total", status="413", code="quota-exceeded") >= 1


async def test_no_metrics_serves_none(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(make_app(msgspec.structs.replace(config, no_metrics=True)))
    assert (await client.get("/metrics")).status == 404


async def test_metrics_port_serves_metrics_only_there(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    client: TestClient = await aiohttp_client(make_app(msgspec.structs.replace(config, metrics_port=port)))
    assert (await client.get("/metrics")).status == 404
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        samples = parse(await resp.text())
    assert any(name == "tusd_connections_open" for name, _ in samples)


async def test_post_hook_invocations_and_errors_by_type(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    registry = HookRegistry()
    done = asyncio.Event()

    async def broken(event: HookEvent) -> None:
        done.set()
        raise RuntimeError("receiver bug")

    registry.register(HookType.POST_CREATE, broken)
    client: TestClient = await aiohttp_client(make_app(config, hooks=registry))
    before = await scrape(client)
    await create(client, length=5)
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0)  # the hook task records its outcome right after raising
    after = await scrape(client)
    for name in ("tusd_hook_invocations_total", "tusd_hook_errors_total"):
        assert value(after, name, hooktype="post-create") - value(before, name, hooktype="post-create") == 1


async def test_lock_takeovers_waits_and_timeouts_are_counted() -> None:
    from tusd_py.telemetry import metrics

    locker = InProcessLocker(timeout=0.2)
    takeovers, timeouts = metrics.LOCK_TAKEOVERS._value.get(), metrics.LOCK_TIMEOUTS._value.get()
    waits = metrics.LOCK_WAIT._sum.get()
    released = asyncio.Event()
    async with locker.lock("u", on_release_request=released.set):
        with pytest.raises(UploadLocked):  # the holder was asked but never let go: 423
            async with locker.lock("u"):
                pass
    assert released.is_set()
    assert metrics.LOCK_TAKEOVERS._value.get() == takeovers + 1
    assert metrics.LOCK_TIMEOUTS._value.get() == timeouts + 1

    async def holder() -> None:
        async with locker.lock("v"):
            await asyncio.sleep(0.05)

    task = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    async with locker.lock("v"):
        pass
    await task
    assert metrics.LOCK_WAIT._sum.get() > waits


async def test_processing_jobs_and_queue_depth(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    idle: TestClient = await aiohttp_client(make_app(config))  # workers=0: the job stays queued
    path = await create(idle, length=3)
    assert (await patch(idle, path, 0, b"abc")).status == 204
    await asyncio.sleep(0.01)
    samples = await scrape(idle)
    assert value(samples, "tusd_py_processing_queue_depth", state="queued") == 1
    assert value(samples, "tusd_py_processing_queue_oldest_age_seconds") > 0

    working: TestClient = await aiohttp_client(
        make_app(msgspec.structs.replace(config, storage_dir=config.storage_dir + "2", workers=1))
    )
    before = await scrape(working)
    path = await create(working, length=3)
    assert (await patch(working, path, 0, b"abc")).status == 204
    await processed_head(working, path)
    for _ in range(100):  # the job's outcome is recorded right after its last step stored the digest
        after = await scrape(working)
        if value(after, "tusd_py_processing_jobs_total", step="all", outcome="completed") > value(
            before, "tusd_py_processing_jobs_total", step="all", outcome="completed"
        ):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("no completed job counted")
    assert value(after, "tusd_py_processing_queue_depth", state="queued") == 0
    steps = {dict(labels).get("step") for name, labels in after if name == "tusd_py_processing_jobs_total"}
    assert len(steps - {"all"}) >= 1, steps


async def test_a_scrape_counts_a_long_queue_with_one_statement(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    """The depth is counted, not read: past one page of jobs (500) it is still exact, for one statement."""
    app = make_app(config)  # workers=0: jobs stay queued
    client: TestClient = await aiohttp_client(app)
    store = app[PIPELINE_KEY].store
    queued = MAX_PAGE_SIZE + 30

    async def finished(n: int) -> None:
        now = time.time()
        rec = Recording(id=f"q{n:04d}", owner=None, status=Status.RECORDED, length=1, created_at=now, updated_at=now)
        await store.create_recording(rec)
        await store.mark_uploaded(rec.id, 1)

    for start in range(0, queued, 50):
        await asyncio.gather(*(finished(n) for n in range(start, min(start + 50, queued))))
    async with statements(store) as seen:
        samples = await scrape(client)
    assert value(samples, "tusd_py_processing_queue_depth", state="queued") == queued
    assert value(samples, "tusd_py_processing_queue_depth", state="running") == 0
    assert len(touching(seen, "jobs")) == 1, seen
