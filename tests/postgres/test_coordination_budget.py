"""The coordination budget (issue 27): what one small upload costs in PostgreSQL and Redis.

One in-process app with ``--database-url`` and ``--redis-url``, auth on, processing on; small
uploads by creation-with-upload, each waited for until its recording is ``completed``. Counted
on the servers' side for PostgreSQL (every statement, transaction control and connection resets
included) and on the client's side for Redis (every command tusd-py sends), divided by the
number of uploads once the app is idle again. The profile is printed (``pytest -s``) so a
regression shows where it went.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from conformance.postgres_server import PostgresServer, find_pg_bin
from conformance.redis_server import RedisServer
from tests.pipeline.statements import Statement, statements
from tests.postgres.coordination import (
    OBSERVER,
    RedisCommands,
    app_statements,
    enable_statement_stats,
    redis_processed,
    reset_statements,
    settled,
)
from tests.tokens import SECRET, bearer
from tusd_py.config.values import Config
from tusd_py.pipeline.postgres_store import PostgresRecordingStore
from tusd_py.server.app import PIPELINE_KEY, make_app

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

UPLOADS = 24
IN_FLIGHT = 4
SIZE = 4 * 1024
PG_BUDGET = 10  # statements per upload, all told (issue 27)
# Commands per upload. Issue 27 asks for at most 6; measured 4, all EVALSHA: the upload's lock hold
# costs acquisition, one fence check for its batch, one for the finish, release. Each check guards a
# commit; skipping one would let a holder that lost Redis commit (tests/locks/test_redis_locking.py).
# Processing records the digest without the lock (it was 3 more: acquisition, check, release): a
# write the store makes conditional on the finished upload it read (DataStore.record_digest; the
# guards are tested in tests/storage/test_filesystem.py and tests/s3/test_s3_conditional_info.py).
REDIS_BUDGET = 4
HANDSHAKE = {"HELLO", "CLIENT"}
# What a loaded machine may add to a whole run, not per upload: a lease renewal of a hold stretched
# past a third of the lease (the budget above has no room left for it). The profile is printed on failure.
RARE = 2


@pytest.fixture(scope="module")
def counted_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A cluster of its own with pg_stat_statements loaded (every statement tracked, utility ones too)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are missing (Debian package postgresql)")
    settings = ("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track_utility=on")
    with PostgresServer(bin_dir, settings=settings) as server:
        asyncio.run(enable_statement_stats(server.url()))
        yield server


@pytest.fixture
async def app_client(  # type: ignore[no-untyped-def]
    aiohttp_client, tmp_path: Path, counted_postgres: PostgresServer, redis_url: str
) -> AsyncIterator[tuple[TestClient, str]]:
    name = "budget_" + secrets.token_hex(4)
    config = Config(
        storage_dir=str(tmp_path / "data"),
        jwt_secret=SECRET,
        database_url=counted_postgres.create_database(name),
        redis_url=redis_url,
        workers=2,
    )
    yield await aiohttp_client(make_app(config)), name


async def _upload(client: TestClient, user: str) -> str:
    headers = {
        "Tus-Resumable": "1.0.0", **bearer(user), "Upload-Length": str(SIZE),
        "Content-Type": "application/offset+octet-stream", "Upload-Metadata": "filename bWVtby53YXY=",
    }  # fmt: skip
    async with client.post("/files/", headers=headers, data=secrets.token_bytes(SIZE)) as resp:
        assert resp.status == 201, await resp.text()
        assert resp.headers["Upload-Offset"] == str(SIZE)
        return resp.headers["Location"].rsplit("/", 1)[1]


async def _uploads(client: TestClient, count: int) -> list[str]:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(n: int) -> str:
        async with gate:
            return await _upload(client, f"user-{n % 3}")

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def _completed(url: str, ids: list[str], within: float = 60.0) -> None:
    conn = await asyncpg.connect(url, user=OBSERVER)
    try:
        for _ in range(int(within / 0.05)):
            done = await conn.fetchval(
                "SELECT COUNT(*) FROM recordings WHERE id = ANY($1::text[]) AND status = 'completed'", ids
            )
            if done == len(ids):
                return
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError(f"only {done} of {len(ids)} recordings completed within {within} s")


async def test_a_small_upload_costs_at_most_its_budget_of_statements_and_commands(
    app_client: tuple[TestClient, str],
    counted_postgres: PostgresServer,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, database = app_client
    admin = counted_postgres.url()
    app_url = counted_postgres.url(database)
    # Warm up: the pool's connections, prepared statements, the lock subscription.
    await _completed(app_url, await _uploads(client, 2 * IN_FLIGHT))
    await settled(lambda: app_statements(admin, database, counted_postgres.user))
    await reset_statements(admin)
    redis = RedisCommands()
    port = redis_server.port
    processed_before = redis_processed(port)
    with redis.counting(monkeypatch) as sent:
        ids = await _uploads(client, UPLOADS)
        await _completed(app_url, ids)
        statements = await settled(lambda: app_statements(admin, database, counted_postgres.user))
        sent = collections.Counter(sent)
    processed = redis_processed(port) - processed_before - 1  # the first INFO counts itself

    pg_total = sum(s.calls for s in statements)
    # A connection's handshake (HELLO, CLIENT SETINFO) is the pool's, once per connection it opens
    # (a few more under a concurrency peak), not the upload's: printed, not budgeted.
    redis_total = sum(calls for name, calls in sent.items() if name not in HANDSHAKE)
    print(f"\nPostgreSQL: {pg_total / UPLOADS:.2f} statements per upload ({pg_total} for {UPLOADS})")
    for counted in statements:
        print(f"  {counted.calls / UPLOADS:6.2f}  {' '.join(counted.query.split())[:150]}")
    print(f"Redis: {redis_total / UPLOADS:.2f} commands sent per upload ({redis_total} for {UPLOADS}, no handshakes);")
    print(f"  {processed / UPLOADS:.2f} processed by the server per upload, commands run by scripts included")
    for name, calls in sent.most_common():
        print(f"  {calls / UPLOADS:6.2f}  {name}")
    assert pg_total <= PG_BUDGET * UPLOADS, f"{pg_total / UPLOADS:.2f} PostgreSQL statements per upload"
    assert redis_total <= REDIS_BUDGET * UPLOADS + RARE, f"{redis_total / UPLOADS:.2f} Redis commands per upload"
    assert "EVAL" not in sent, "scripts go by EVALSHA"


async def _index_plan(store: PostgresRecordingStore, statement: Statement) -> str:
    """The plan with sequential scans priced out: a table still scanned has no index for this."""
    async with store.database.transaction() as conn:
        await conn.execute("SET LOCAL enable_seqscan = off")  # SET LOCAL: gone at the commit
        rows = await conn.fetch("EXPLAIN " + statement.text, *statement.args)
    return "\n".join(row[0] for row in rows)


async def test_every_statement_of_a_small_upload_reads_through_an_index(
    app_client: tuple[TestClient, str], counted_postgres: PostgresServer
) -> None:
    client, database = app_client
    store = client.app[PIPELINE_KEY].store
    assert isinstance(store, PostgresRecordingStore)
    async with statements(store) as seen:  # the quota ledger shares the store's pool
        await _completed(counted_postgres.url(database), await _uploads(client, IN_FLIGHT))
    control = {"BEGIN", "COMMIT", "ROLLBACK"}  # asyncpg sends "BEGIN;" for a transaction of start-up recovery
    hot = {s.text: s for s in seen if s.text.split(None, 1)[0].rstrip(";").upper() not in control}
    assert len(hot) >= 6, sorted(hot)  # creation, reservation, finish, settlement, claim, completion
    for statement in hot.values():
        plan = await _index_plan(store, statement)
        assert "Seq Scan" not in plan, (statement.text, plan)
