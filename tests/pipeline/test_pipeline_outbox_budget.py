"""A webhook backlog costs each delivery round the same few indexed statements, on both engines.

A receiver down for hours leaves thousands of rows. Each round of :class:`OutboxDelivery` (drop
what the retention ended, claim a batch, report each attempt) must read through indexes and touch
a bounded number of rows: a statement that scans the table per batch of 32 makes draining the
backlog quadratic. The plans are asked of each engine for the statements a round really sent.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from conformance.live_server import free_port
from tests.pipeline.statements import Statement, plan, statements, touching
from tusd_py.hooks.delivery import OutboxDelivery
from tusd_py.hooks.webhook import WebhookConfig
from tusd_py.pipeline.models import OutboxEvent
from tusd_py.pipeline.postgres_store import PostgresRecordingStore
from tusd_py.pipeline.store import RecordingStore

if TYPE_CHECKING:
    from conftest import FakeClock

BACKLOG = 5000
BATCH = 32
ROUNDS = 3


def event(n: int, target: str, now: float) -> OutboxEvent:
    return OutboxEvent(
        event_id=f"e{n:05d}", target=target, hook="post-finish", upload_id=f"u{n}", body=b"{}",
        created_at=now, not_before=now,
    )  # fmt: skip


async def fill(store: RecordingStore, clock: FakeClock, target: str) -> None:
    for start in range(0, BACKLOG, 500):
        clock.advance(1)
        await store.enqueue_events([event(n, target, clock()) for n in range(start, start + 500)])


def scans_the_table(plan_text: str) -> bool:
    # SQLite: "SCAN hook_outbox" without an index; PostgreSQL: "Seq Scan on hook_outbox".
    return bool(re.search(r"^(?:.*\bSCAN hook_outbox(?! USING)|.*Seq Scan on hook_outbox)", plan_text, re.M))


async def test_a_backlog_costs_each_round_a_few_indexed_statements(store: RecordingStore, clock: FakeClock) -> None:
    target = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: every attempt fails at once
    await fill(store, clock, target)
    if isinstance(store, PostgresRecordingStore):  # the planner's statistics, as autovacuum keeps them
        async with store.database.transaction() as conn:
            await conn.execute("ANALYZE hook_outbox")
    else:
        await store._run(lambda conn: conn.execute("ANALYZE"))
    delivery = OutboxDelivery(store, [WebhookConfig(url=target, timeout=2.0)], batch=BATCH, clock=clock)
    sent: list[Statement] = []
    try:
        for _ in range(ROUNDS):
            async with statements(store) as seen:
                assert await delivery.run_once() == BATCH
            ours = touching(seen, "hook_outbox")
            # drop + claim + one report per row (SQLite's claim also updates each row it read)
            assert len(ours) <= 2 * BATCH + 2, len(ours)
            sent.extend(ours)
    finally:
        await delivery.stop(grace=1)
    async with statements(store) as seen:
        assert await store.next_event_due() is not None  # the idle wait's statement
    sent.extend(touching(seen, "hook_outbox"))
    assert not any("COUNT(" in statement.text.upper() for statement in sent), "a count reads every row"
    for statement in {statement.text: statement for statement in sent}.values():
        plan_text = await plan(store, statement)
        assert not scans_the_table(plan_text), (statement.text, plan_text)
