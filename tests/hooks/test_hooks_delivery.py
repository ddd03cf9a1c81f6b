"""OutboxDelivery against a real receiver: what it gives up on, and when."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conformance.live_server import free_port
from tests.hooks.hook_support import StandardReceiver
from tests.hooks.test_hooks_outbox import HOOK_SECRET
from tusd_py.hooks.delivery import OutboxDelivery
from tusd_py.hooks.webhook import WebhookConfig
from tusd_py.pipeline.models import OutboxEvent
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteRecordingStore]:
    sqlite = SQLiteRecordingStore(tmp_path / "state.sqlite3")
    await sqlite.open()
    yield sqlite
    await sqlite.close()


@pytest.fixture
async def receiver() -> AsyncIterator[StandardReceiver]:
    server = StandardReceiver(free_port(), HOOK_SECRET)
    await server.start()
    yield server
    await server.stop()


def event(receiver: StandardReceiver, event_id: str = "e1") -> OutboxEvent:
    now = time.time()
    return OutboxEvent(
        event_id=event_id, target=receiver.url, hook="post-finish", upload_id="u",
        body=b'{"type":"post-finish"}', created_at=now, not_before=now,
    )  # fmt: skip


async def run_until_empty(delivery: OutboxDelivery, store: SQLiteRecordingStore, within: float) -> None:
    deadline = time.monotonic() + within
    while await store.pending_events():  # bounded by the deadline
        assert time.monotonic() < deadline, "the outbox did not empty"
        await delivery.run_once()
        await asyncio.sleep(0.1)


async def test_an_answer_a_retry_cannot_change_is_dropped_after_one_attempt(
    store: SQLiteRecordingStore, receiver: StandardReceiver
) -> None:
    receiver.fail_with = 400
    delivery = OutboxDelivery(store, [WebhookConfig(url=receiver.url, secret=HOOK_SECRET)])
    await store.enqueue_events([event(receiver)])
    assert await delivery.run_once() == 1
    assert await store.pending_events() == []
    await delivery.stop(grace=1)


async def test_a_receiver_down_longer_than_the_retention_loses_the_event_with_a_log_line(
    store: SQLiteRecordingStore, receiver: StandardReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.fail_with = 503
    config = WebhookConfig(url=receiver.url, secret=HOOK_SECRET)
    delivery = OutboxDelivery(store, [config], retention=1.5, backoff_base=0.2, backoff_max=0.4)
    await store.enqueue_events([event(receiver)])
    began = time.monotonic()
    await run_until_empty(delivery, store, within=15)
    assert time.monotonic() - began >= 1.0  # retried (503 is "not now") until the retention ran out
    assert "webhook gave up" in capsys.readouterr().out
    await delivery.stop(grace=1)


async def test_a_row_for_a_webhook_no_longer_configured_waits_for_its_return(
    store: SQLiteRecordingStore, receiver: StandardReceiver
) -> None:
    other = OutboxDelivery(store, [WebhookConfig(url=f"http://127.0.0.1:{free_port()}/elsewhere")])
    await store.enqueue_events([event(receiver)])
    await other.run_once()
    assert [e.event_id for e in await store.pending_events()] == ["e1"]  # kept, rescheduled
    await other.stop(grace=1)
