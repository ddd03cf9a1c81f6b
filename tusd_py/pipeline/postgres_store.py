"""The shared :class:`RecordingStore`: PostgreSQL, for several tusd-py processes and instances.

Same tables, guarantees and rules as the SQLite store (both are
:class:`~tusd_py.pipeline.sql_store.SQLRecordingStore`; the statements are
:class:`~tusd_py.pipeline.postgres_tables.PostgresTables`'), with what many claimants need besides:

* a job is claimed with ``FOR UPDATE SKIP LOCKED``, so concurrent claimers never wait on each
  other nor take the same row, and with a lease (``claimed_by``, ``lease_until``). A ``running``
  job whose lease ran out is claimable like a due queued one: an instance that died (or froze)
  loses its jobs to the live ones within ``lease_seconds``, not at its next restart. The claim
  token grows with every claim, so a late report from the old claimant is ignored.
* enqueueing sends ``NOTIFY`` on :data:`JOB_CHANNEL` (delivered at commit), which wakes idle
  workers of every instance; they still poll as a bounded fallback.
* the hot paths (creation, finish, claim, completion) are one statement each in autocommit
  (:mod:`~tusd_py.pipeline.postgres_statements`); finish and completion fall back to the shared
  transactional script when their statement finds anything unusual, which names the reason. A
  worker's completion claims its next job in the same statement (:meth:`complete_and_claim`),
  so a busy queue costs one round trip per job, not two.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
import structlog

from tusd_py.database.connection import Database
from tusd_py.pipeline import transactions
from tusd_py.pipeline.models import Claim, OutboxEvent, Recording
from tusd_py.pipeline.postgres_statements import (
    CLAIM_FROM,
    CLAIM_TO,
    COMPLETE,
    COMPLETE_CLAIM,
    COMPLETE_FROM,
    COMPLETE_TO,
    FINISH,
    FINISH_FROM,
    FINISH_TO,
)
from tusd_py.pipeline.postgres_tables import JOB_CHANNEL, PostgresTables, claim_round_from
from tusd_py.pipeline.rows import recording_from
from tusd_py.pipeline.sql_store import Script, SQLRecordingStore, new_job_id
from tusd_py.pipeline.states import JobStatus

log = structlog.get_logger(__name__)

T = TypeVar("T")
_NO_HINT = object()  # next_due: no claim has said when the next job is due since it was last asked
_QUEUED, _RUNNING, _DONE = JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.DONE.value

__all__ = ["JOB_CHANNEL", "PostgresRecordingStore", "instance_name"]


def instance_name() -> str:
    """Who holds a lease, for operators reading the jobs table: host, pid and a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class PostgresRecordingStore(SQLRecordingStore):
    uses_leases = True
    announces_own_enqueues = True

    def __init__(
        self,
        database: Database,
        *,
        lease_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        instance: str | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.database = database
        self.lease_seconds = lease_seconds
        self.instance = instance or instance_name()
        self._clock = clock
        self._wake: list[Callable[[], None]] = []
        self._open = False
        self._due_hint: float | object | None = _NO_HINT

    async def open(self) -> None:
        if self._open:
            return
        await self.database.open()
        self._open = True
        for callback in self._wake:
            self.database.listen(JOB_CHANNEL, callback)
        log.info("recording store opened", database="postgresql", instance=self.instance)

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self.database.close()

    def on_job_available(self, callback: Callable[[], None]) -> None:
        self._wake.append(callback)
        if self._open:
            self.database.listen(JOB_CHANNEL, callback)

    async def _transact(self, script: Script[T], *, write: bool = True, atomic: bool = True) -> T:
        session = self.database.transaction() if atomic else self.database.connection()
        async with session as conn:
            return await script(PostgresTables(conn, self._hint_due))

    # -- when the next job is due ------------------------------------------------------------------

    def _hint_due(self, due: float | None) -> None:
        self._due_hint = due

    def _jobs_changed(self) -> None:
        """A change to the jobs here (or another claim) makes the last empty claim's answer old."""
        self._due_hint = _NO_HINT

    async def next_due(self) -> float | None:
        hint, self._due_hint = self._due_hint, _NO_HINT
        if hint is not _NO_HINT:  # the claim that just found nothing said when the next job is due
            return hint  # type: ignore[return-value]
        return await super().next_due()

    # -- one statement where the usual case allows it ------------------------------------------------

    async def mark_uploaded(
        self, upload_id: str, offset: int | None = None, events: Sequence[OutboxEvent] = ()
    ) -> tuple[Recording, bool]:
        if not events:  # the usual case: one statement; anything unusual takes the shared script
            self._jobs_changed()
            async with self.database.connection() as conn:
                row = await conn.fetchrow(
                    FINISH, upload_id, offset, self._clock(), new_job_id(), list(FINISH_FROM), FINISH_TO.value,
                    JOB_CHANNEL,
                )  # fmt: skip
            if row is not None:
                return recording_from(row), bool(row["inserted"])
        return await super().mark_uploaded(upload_id, offset, events)

    async def complete_job(
        self, job_id: str, claim_token: int, results: dict[str, Any], events: Sequence[OutboxEvent] = ()
    ) -> bool:
        if not events:  # the usual case: one statement; a refusal is looked at by the shared script
            self._jobs_changed()
            encoded = msgspec.json.encode(results).decode("utf-8")  # fail here, in the caller, if not JSON
            async with self.database.connection() as conn:
                done = await conn.fetchval(
                    COMPLETE, job_id, claim_token, _RUNNING, _DONE, self._clock(), encoded,
                    list(COMPLETE_FROM), COMPLETE_TO.value,
                )  # fmt: skip
            if done:
                return True
        return await super().complete_job(job_id, claim_token, results, events)

    async def complete_and_claim(
        self, job_id: str, claim_token: int, results: dict[str, Any]
    ) -> tuple[bool, Claim | None] | None:
        self._jobs_changed()
        encoded = msgspec.json.encode(results).decode("utf-8")  # fail here, in the caller, if not JSON
        now = self._clock()
        lease_until = now + self.lease_seconds
        async with self.database.connection() as conn:
            row = await conn.fetchrow(
                COMPLETE_CLAIM, job_id, claim_token, _RUNNING, _DONE, now, encoded, list(COMPLETE_FROM),
                COMPLETE_TO.value, _QUEUED, self.instance, lease_until, list(CLAIM_FROM), CLAIM_TO.value,
            )  # fmt: skip
        assert row is not None  # the statement always answers one row
        # Anything unusual is looked at as its own path does: a refused completion by the shared
        # script (which names the reason), a claimed job its recording refuses by the claim's rounds.
        done = bool(row["completed"]) or await super().complete_job(job_id, claim_token, results)
        found = claim_round_from(row, self._hint_due)
        if found is None:
            return done, None
        claim = transactions.claimed(found)
        if claim is None:
            claim = await self._transact(
                lambda t: transactions.claim(t, now, self.instance, lease_until, first=found), atomic=False
            )
        return done, claim
