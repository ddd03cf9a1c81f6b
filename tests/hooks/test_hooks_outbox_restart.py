"""Durable webhooks across a restart of the real server (a subprocess), and across instances."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from conformance.live_server import LiveServer, free_port
from tests.client.tus import id_of, session, upload
from tests.hooks.hook_support import StandardReceiver
from tests.hooks.test_hooks_outbox import HOOK_SECRET
from tests.tokens import SECRET, bearer
from tusd_py.hooks.delivery import OutboxDelivery
from tusd_py.hooks.webhook import WebhookConfig
from tusd_py.pipeline.models import OutboxEvent
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore


class CountingStore(SQLiteRecordingStore):
    claimed = 0

    async def claim_events(self, holder: str, lease_seconds: float, limit: int) -> list[OutboxEvent]:
        rows = await super().claim_events(holder, lease_seconds, limit)
        self.claimed += len(rows)
        return rows


@pytest.mark.slow
async def test_events_left_undelivered_by_a_stopped_server_arrive_after_its_restart(tmp_path: Path) -> None:
    receiver = StandardReceiver(free_port(), HOOK_SECRET)
    args = (
        "--jwt-secret", SECRET, "--hooks-url", receiver.url, "--hooks-secret", HOOK_SECRET,
        "--hooks-events", "post-create,post-finish", "--hooks-timeout", "1", "--hooks-backoff-max", "2",
    )  # fmt: skip
    server = LiveServer(tmp_path / "data", *args)
    try:
        await asyncio.to_thread(server.start)
        async with session(server.url) as http:
            ids = [id_of(await upload(http, f"take {n}".encode(), auth=bearer("alice"))) for n in range(3)]
        assert server.stop() == 0  # SIGTERM while the receiver is still down
        with sqlite3.connect(tmp_path / "data" / "state.sqlite3") as db:
            before = dict(db.execute("SELECT event_id, hook FROM hook_outbox").fetchall())
        assert sorted(before.values()) == ["post-create"] * 3 + ["post-finish"] * 3
        await receiver.start()
        await asyncio.to_thread(server.start)  # the same storage directory and state database
        finished = await receiver.wait_for("post-finish", 3, within=30)
        created = await receiver.wait_for("post-create", 3, within=30)
    finally:
        server.stop()
        await receiver.stop()
    assert sorted(d.event["upload"]["id"] for d in finished) == sorted(ids)
    # Event ids are stable across the restart: the ones written before it are the ones delivered.
    assert {d.webhook_id for d in finished + created} == set(before)


async def test_two_instances_on_one_database_never_send_one_row_twice(tmp_path: Path) -> None:
    receiver = StandardReceiver(free_port(), HOOK_SECRET)
    receiver.delay = 0.05  # attempts overlap in time
    await receiver.start()
    db = tmp_path / "state.sqlite3"
    stores = [CountingStore(db), CountingStore(db)]
    for store in stores:
        await store.open()
    hook = WebhookConfig(url=receiver.url, secret=HOOK_SECRET)
    instances = [OutboxDelivery(store, [hook], poll_interval=0.05, batch=4) for store in stores]
    now = time.time()
    body = b'{"type":"post-finish"}'
    await stores[0].enqueue_events(
        [
            OutboxEvent(
                event_id=f"e{n}",
                target=receiver.url,
                hook="post-finish",
                upload_id=None,
                body=body,
                created_at=now,
                not_before=now,
            )
            for n in range(40)
        ]
    )
    try:
        for instance in instances:
            await instance.start()
        await receiver.wait_for("post-finish", 40, within=30)
        await asyncio.sleep(0.3)  # a duplicate would have had time to arrive
    finally:
        for instance in instances:
            await instance.stop(grace=5)
        for store in stores:
            await store.close()
        await receiver.stop()
    ids = [d.webhook_id for d in receiver.deliveries]
    assert sorted(ids) == sorted(f"e{n}" for n in range(40))  # each exactly once
    assert all(store.claimed for store in stores)  # both instances did deliver a share
