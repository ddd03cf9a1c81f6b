"""The shared quota ledger (``--database-url``): per-user usage rows in PostgreSQL.

Same rules as :class:`tusd_py.quotas.ledger.MemoryQuotaLedger` (:func:`tusd_py.quotas.ledger.check_quota`
words every refusal), made safe across instances by the database:

* a reservation is **one conditional statement** (``_RESERVE``): the usage row is inserted or
  grown only while ``bytes + n <= cap AND unfinished + 1 <= most``, and the upload's claim is
  inserted with it. Concurrent reservations of one user queue on that row's lock, and each
  re-checks the condition against the committed usage, so instances racing for the last bytes
  never jointly exceed the limit;
* each upload has one claim row (owner, bytes, unfinished) changed in the same statement or
  transaction as the usage row, so settling (finish, one statement) and releasing (termination)
  are idempotent: a retry after an outage, or two instances reporting one event, count it once.
"""

from __future__ import annotations

from storage_backends.base import DataStore
from tusd_py.database.connection import Conn, Database
from tusd_py.model.upload import UploadInfo
from tusd_py.protocol import upload_state
from tusd_py.protocol.upload_state import claimed_bytes
from tusd_py.quotas.ledger import QuotaExceeded, QuotaLedger, QuotaLimits, Usage, check_quota, refused

_ADD = (
    "UPDATE quota_usage SET bytes = bytes + $2, unfinished = unfinished + $3 WHERE owner = $1"
    " AND ($2 <= 0 OR $4::bigint IS NULL OR bytes + $2 <= $4)"
    " AND ($3 <= 0 OR $5::integer IS NULL OR unfinished + $3 <= $5) RETURNING TRUE"
)

# $1 owner, $2 bytes, $3 unfinished, $4 byte cap, $5 unfinished cap, $6 upload id. The usage row is
# created or grown only within the caps (the row locked by the upsert, the caps checked against its
# committed value, as _ADD does), and the claim inserted with it: one statement. TRUE: reserved.
_RESERVE = """
WITH added AS (
    INSERT INTO quota_usage AS u (owner, bytes, unfinished)
    SELECT $1, $2::bigint, $3::integer WHERE ($2::bigint <= 0 OR $4::bigint IS NULL OR $2::bigint <= $4)
        AND ($3::integer <= 0 OR $5::integer IS NULL OR $3::integer <= $5)
    ON CONFLICT (owner) DO UPDATE SET bytes = u.bytes + $2::bigint, unfinished = u.unfinished + $3::integer
    WHERE ($2::bigint <= 0 OR $4::bigint IS NULL OR u.bytes + $2::bigint <= $4)
        AND ($3::integer <= 0 OR $5::integer IS NULL OR u.unfinished + $3::integer <= $5)
    RETURNING owner
), claimed AS (
    INSERT INTO quota_claims (upload_id, owner, bytes, unfinished)
    SELECT $6, owner, $2::bigint, TRUE FROM added RETURNING TRUE
)
SELECT EXISTS (SELECT FROM claimed)
"""
# $1 upload id, $2 final bytes. The claim locked and settled, its owner's usage moved by the
# difference: one statement. A second settlement (a retry, another instance) finds the claim
# settled once it gets the lock and moves nothing.
_SETTLE = """
WITH old AS (
    SELECT owner, bytes, unfinished FROM quota_claims WHERE upload_id = $1 FOR UPDATE
), settled AS (
    UPDATE quota_claims c SET bytes = $2::bigint, unfinished = FALSE FROM old WHERE c.upload_id = $1
    RETURNING old.owner, old.bytes, old.unfinished
)
UPDATE quota_usage u
SET bytes = u.bytes + $2::bigint - settled.bytes, unfinished = u.unfinished - settled.unfinished::int
FROM settled WHERE u.owner = settled.owner
"""


class PostgresQuotaLedger(QuotaLedger):
    def __init__(self, limits: QuotaLimits, database: Database) -> None:
        self.limits = limits
        self.database = database

    async def open(self) -> None:
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()

    @staticmethod
    async def _usage(conn: Conn, user: str) -> Usage:
        row = await conn.fetchrow("SELECT bytes, unfinished FROM quota_usage WHERE owner = $1", user)
        return Usage() if row is None else Usage(int(row["bytes"]), int(row["unfinished"]))

    async def usage(self, user: str) -> Usage:
        async with self.database.connection() as conn:
            return await self._usage(conn, user)

    @staticmethod
    async def _add_unchecked(conn: Conn, owner: str, add_bytes: int, add_unfinished: int) -> None:
        await conn.execute("INSERT INTO quota_usage (owner) VALUES ($1) ON CONFLICT (owner) DO NOTHING", owner)
        await conn.execute(
            "UPDATE quota_usage SET bytes = bytes + $2, unfinished = unfinished + $3 WHERE owner = $1",
            owner, add_bytes, add_unfinished,
        )  # fmt: skip

    async def _add(self, conn: Conn, owner: str, add_bytes: int, add_unfinished: int) -> None:
        """The one conditional statement; on refusal, the reason from the committed usage."""
        await conn.execute("INSERT INTO quota_usage (owner) VALUES ($1) ON CONFLICT (owner) DO NOTHING", owner)
        ok = await conn.fetchval(
            _ADD, owner, add_bytes, add_unfinished, self.limits.max_bytes, self.limits.max_unfinished
        )
        if not ok:
            raise await self._refusal(conn, owner, add_bytes, add_unfinished)

    async def _refusal(self, conn: Conn, owner: str, add_bytes: int, add_unfinished: int) -> Exception:
        """Why a conditional statement changed nothing, worded from the committed usage."""
        usage = await self._usage(conn, owner)
        try:
            check_quota(usage, self.limits, add_bytes=add_bytes, add_unfinished=add_unfinished)
        except QuotaExceeded as exc:
            return refused(exc)
        # The row changed between the UPDATE and the read (a release landed): say so plainly.
        return refused(QuotaExceeded("bytes", "quota exceeded: concurrent uploads used the room; retry"))

    async def reserve(self, info: UploadInfo) -> None:
        if info.owner is None:
            return
        nbytes = claimed_bytes(info)
        limits = self.limits.max_bytes, self.limits.max_unfinished
        async with self.database.connection() as conn:  # one statement: usage and claim together
            if not await conn.fetchval(_RESERVE, info.owner, nbytes, 1, *limits, info.id):
                raise await self._refusal(conn, info.owner, nbytes, 1)

    async def grow(self, info: UploadInfo, new_bytes: int) -> None:
        if info.owner is None:
            return
        async with self.database.connection() as conn:
            # Claims only grow while unfinished (a smaller final size is settled by ``finished``):
            # a claim already this large needs no lock, and this one read is all (finish asks on every upload).
            claimed = await conn.fetchval("SELECT bytes FROM quota_claims WHERE upload_id = $1", info.id)
        if claimed is None or new_bytes <= claimed:
            return
        async with self.database.transaction() as conn:
            claim = await conn.fetchrow(
                "SELECT owner, bytes FROM quota_claims WHERE upload_id = $1 FOR UPDATE", info.id
            )
            if claim is None or new_bytes <= claim["bytes"]:
                return
            await self._add(conn, claim["owner"], new_bytes - claim["bytes"], 0)
            await conn.execute("UPDATE quota_claims SET bytes = $2 WHERE upload_id = $1", info.id, new_bytes)

    async def room(self, user: str | None) -> int | None:
        if user is None or self.limits.max_bytes is None:
            return None
        return max(0, self.limits.max_bytes - (await self.usage(user)).bytes)

    async def finished(self, info: UploadInfo) -> None:
        if info.owner is None:
            return
        async with self.database.connection() as conn:
            await conn.execute(_SETTLE, info.id, claimed_bytes(info))

    async def release(self, upload_id: str) -> None:
        async with self.database.transaction() as conn:
            claim = await conn.fetchrow(
                "DELETE FROM quota_claims WHERE upload_id = $1 RETURNING owner, bytes, unfinished", upload_id
            )
            if claim is not None:
                await conn.execute(
                    "UPDATE quota_usage SET bytes = bytes - $2, unfinished = unfinished - $3 WHERE owner = $1",
                    claim["owner"], claim["bytes"], int(claim["unfinished"]),
                )  # fmt: skip

    async def rebuild(self, store: DataStore) -> None:
        """Adopt stored uploads that have no claim (made before ``--database-url``); the ledger is
        otherwise durable and shared, so nothing is recounted. Several instances may run this at
        once: a claim is inserted once (ON CONFLICT), and only an inserted claim adds usage."""
        found = [
            (info.id, info.owner, claimed_bytes(info), upload_state.counts_as_unfinished(info))
            async for info in store.list_uploads()
            if info.owner is not None
        ]
        if not found:
            return
        async with self.database.transaction() as conn:
            adopted = await conn.fetch(
                "INSERT INTO quota_claims (upload_id, owner, bytes, unfinished)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::boolean[])"
                " ON CONFLICT (upload_id) DO NOTHING RETURNING owner, bytes, unfinished",
                *(list(column) for column in zip(*found, strict=True)),
            )
            for row in adopted:
                await self._add_unchecked(conn, row["owner"], row["bytes"], int(row["unfinished"]))
