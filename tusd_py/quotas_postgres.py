"""The shared quota ledger (``--database-url``): per-user usage rows in PostgreSQL.

Same rules as :class:`tusd_py.quotas.MemoryQuotaLedger` (:func:`tusd_py.quotas.check_quota`
words every refusal), made safe across instances by the database:

* a reservation is **one conditional statement**, ``UPDATE quota_usage ... WHERE owner = $1 AND
  bytes + n <= cap AND unfinished + 1 <= most``: concurrent reservations of one user queue on
  that row's lock, and each re-checks the condition against the committed usage, so instances
  racing for the last bytes never jointly exceed the limit;
* each upload has one claim row (owner, bytes, unfinished) changed in the same transaction as
  the usage row, so settling (finish) and releasing (termination) are idempotent: a retry after
  an outage, or two instances reporting one event, count it once.
"""

from __future__ import annotations

from storage_backends.base import DataStore, UploadInfo
from tusd_py.database.connection import Conn, Database
from tusd_py.protocol import upload_state
from tusd_py.protocol.upload_state import claimed_bytes
from tusd_py.quotas import QuotaExceeded, QuotaLedger, QuotaLimits, Usage, check_quota, refused

_ADD = (
    "UPDATE quota_usage SET bytes = bytes + $2, unfinished = unfinished + $3 WHERE owner = $1"
    " AND ($2 <= 0 OR $4::bigint IS NULL OR bytes + $2 <= $4)"
    " AND ($3 <= 0 OR $5::integer IS NULL OR unfinished + $3 <= $5) RETURNING TRUE"
)


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
        async with self.database.transaction() as conn:
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
        if ok:
            return
        usage = await self._usage(conn, owner)
        try:
            check_quota(usage, self.limits, add_bytes=add_bytes, add_unfinished=add_unfinished)
        except QuotaExceeded as exc:
            raise refused(exc) from None
        # The row changed between the UPDATE and the read (a release landed): say so plainly.
        raise refused(QuotaExceeded("bytes", "quota exceeded: concurrent uploads used the room; retry"))

    async def reserve(self, info: UploadInfo) -> None:
        if info.owner is None:
            return
        nbytes = claimed_bytes(info)
        async with self.database.transaction() as conn:
            await self._add(conn, info.owner, nbytes, 1)
            await conn.execute(
                "INSERT INTO quota_claims (upload_id, owner, bytes, unfinished) VALUES ($1, $2, $3, TRUE)",
                info.id, info.owner, nbytes,
            )  # fmt: skip

    async def grow(self, info: UploadInfo, new_bytes: int) -> None:
        if info.owner is None:
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
        async with self.database.transaction() as conn:
            claim = await conn.fetchrow(
                "SELECT owner, bytes, unfinished FROM quota_claims WHERE upload_id = $1 FOR UPDATE", info.id
            )
            if claim is None:
                return
            final = claimed_bytes(info)
            await conn.execute(
                "UPDATE quota_usage SET bytes = bytes + $2, unfinished = unfinished - $3 WHERE owner = $1",
                claim["owner"], final - claim["bytes"], int(claim["unfinished"]),
            )  # fmt: skip
            await conn.execute(
                "UPDATE quota_claims SET bytes = $2, unfinished = FALSE WHERE upload_id = $1", info.id, final
            )

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
