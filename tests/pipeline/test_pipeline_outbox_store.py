"""The hook outbox in the recording store: events live and die with the change they report; leases.

Written against the RecordingStore interface (the ``store`` fixture), so every implementation runs them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tusd_py.pipeline.models import OutboxEvent, Recording
from tusd_py.pipeline.sqlite_schema import SCHEMA, SCHEMA_VERSION
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore
from tusd_py.pipeline.states import Status
from tusd_py.pipeline.store import RecordingNotFound, RecordingStore

if TYPE_CHECKING:
    from conftest import FakeClock


def row(event_id: str, clock: FakeClock, hook: str = "post-finish", upload_id: str = "a") -> OutboxEvent:
    now = clock()
    return OutboxEvent(
        event_id=event_id, target="http://127.0.0.1:1/hook", hook=hook, upload_id=upload_id,
        body=b"{}", created_at=now, not_before=now,
    )  # fmt: skip


def recording(upload_id: str, clock: FakeClock) -> Recording:
    return Recording(
        id=upload_id, owner="alice", status=Status.RECORDED, length=10, created_at=clock(), updated_at=clock()
    )


async def ids(store: RecordingStore) -> list[str]:
    return [event.event_id for event in await store.pending_events()]


async def test_events_are_written_with_the_change_and_only_with_it(store: RecordingStore, clock: FakeClock) -> None:
    await store.create_recording(recording("a", clock), [row("created", clock, "post-create")])
    with pytest.raises(RecordingNotFound):  # the change failed: its event must not exist either
        await store.mark_uploaded("nope", 10, [row("lost", clock, upload_id="nope")])
    await store.report_progress("a", 5, [row("progress", clock, "post-receive")])
    # Progress of an upload the store does not know still happened: its event is kept.
    with pytest.raises(RecordingNotFound):
        await store.report_progress("ghost", 5, [row("ghost-progress", clock, "post-receive", "ghost")])
    await store.mark_uploaded("a", 10, [row("finished", clock)])
    claim = await store.claim_job()
    assert claim is not None
    # A stale claim's report is ignored, and so are its events.
    assert not await store.complete_job(claim.job.id, claim.job.claim_token + 1, {}, [row("stale", clock)])
    assert await store.complete_job(claim.job.id, claim.job.claim_token, {}, [row("processed", clock)])
    assert await store.delete_recording("a", [row("terminated", clock, "post-terminate")])
    assert not await store.delete_recording("a", [row("terminated-again", clock, "post-terminate")])
    assert sorted(await ids(store)) == sorted(
        ["created", "progress", "ghost-progress", "finished", "processed", "terminated", "terminated-again"]
    )


async def test_a_lease_keeps_a_row_to_one_holder_until_it_ends(store: RecordingStore, clock: FakeClock) -> None:
    await store.enqueue_events([row("e1", clock), row("e2", clock)])
    first = await store.claim_events("A", 30, 10)
    assert [e.event_id for e in first] == ["e1", "e2"] and all(e.attempts == 1 for e in first)
    assert await store.claim_events("B", 30, 10) == []  # leased
    assert not await store.event_delivered("e1", first[0].target, "B")  # not B's to acknowledge
    assert await store.event_delivered("e1", first[0].target, "A")
    clock.advance(31)  # A died holding e2: the lease ends and B takes it over
    second = await store.claim_events("B", 30, 10)
    assert [e.event_id for e in second] == ["e2"] and second[0].attempts == 2
    assert not await store.event_failed("e2", second[0].target, "A", "late", clock() + 5)  # A's report is void
    assert await store.event_failed("e2", second[0].target, "B", "receiver down", clock() + 5)
    assert await store.claim_events("B", 30, 10) == []  # not before its backoff
    assert await store.next_event_due() == pytest.approx(clock() + 5)
    clock.advance(5)
    assert [e.last_error for e in await store.claim_events("B", 30, 10)] == ["receiver down"]


async def test_a_stopping_holder_releases_its_leases(store: RecordingStore, clock: FakeClock) -> None:
    await store.enqueue_events([row("e1", clock)])
    assert len(await store.claim_events("A", 30, 10)) == 1
    assert await store.release_events("A") == 1
    assert [e.event_id for e in await store.claim_events("B", 30, 10)] == ["e1"]  # no wait for the lease


async def test_rows_older_than_the_retention_are_dropped(store: RecordingStore, clock: FakeClock) -> None:
    await store.enqueue_events([row("old", clock)])
    clock.advance(100)
    await store.enqueue_events([row("new", clock)])
    dropped = await store.drop_events_before(clock() - 50, 10)
    assert [e.event_id for e in dropped] == ["old"] and await ids(store) == ["new"]


async def test_the_retention_drops_a_bounded_batch_oldest_first(store: RecordingStore, clock: FakeClock) -> None:
    for n in range(5):
        await store.enqueue_events([row(f"old{n}", clock)])
        clock.advance(1)
    clock.advance(100)
    assert [e.event_id for e in await store.drop_events_before(clock() - 50, 2)] == ["old0", "old1"]
    assert [e.event_id for e in await store.drop_events_before(clock() - 50, 2)] == ["old2", "old3"]
    assert await ids(store) == ["old4"]


async def test_a_version_1_database_gains_the_outbox_when_opened(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the tables of version 1: everything before the outbox
        db.executescript(SCHEMA.split("CREATE TABLE IF NOT EXISTS hook_outbox")[0])
        db.execute("PRAGMA user_version = 1")
    store = SQLiteRecordingStore(path, clock=clock)
    await store.open()
    try:
        await store.enqueue_events([row("e", clock)])
        assert await ids(store) == ["e"]
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'hook_outbox'")}
        assert {"hook_outbox_due", "hook_outbox_created", "hook_outbox_next", "hook_outbox_leases"} <= indexes
