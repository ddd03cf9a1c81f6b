"""The one :class:`RecordingStore` design both databases share: every method, once.

A method checks its arguments, then runs a script of :mod:`tusd_py.pipeline.transactions` (or one
statement of the dialect's :class:`~tusd_py.pipeline.tables.Tables`) through :meth:`_transact`,
the one thing a dialect's store adds besides opening and closing: how it gets a connection and a
transaction (SQLite: its thread and group commit; PostgreSQL: its pool). A dialect overrides a
method only to try a faster path first (PostgreSQL's one-statement finish and completion) or
where the two crash models differ (``next_due``'s hint, ``uses_leases``).
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Callable, Collection, Coroutine, Sequence
from typing import Any, TypeVar

import msgspec

from tusd_py.pipeline import transactions
from tusd_py.pipeline.models import Claim, Job, JobStatus, OutboxEvent, Page, QueueDepth, Recording, StorageStats
from tusd_py.pipeline.states import Status
from tusd_py.pipeline.store import (
    EVERYONE,
    OwnerFilter,
    RecordingNotFound,
    RecordingStore,
    check_page_size,
    decode_cursor,
    queue_depth_from,
)
from tusd_py.pipeline.tables import Tables

T = TypeVar("T")
Script = Callable[[Tables], Coroutine[Any, Any, T]]

#: An outbox row's last error is kept to this many characters.
ERROR_CHARS = 500


def new_job_id() -> str:
    return uuid.uuid4().hex


class SQLRecordingStore(RecordingStore):
    """Recordings, jobs and the outbox over one SQL database; a dialect supplies :meth:`_transact`."""

    #: Who holds a claim (lease stores name the instance; a one-process store needs no name).
    instance: str | None = None
    _clock: Callable[[], float]

    @abc.abstractmethod
    async def _transact(self, script: Script[T], *, write: bool = True, atomic: bool = True) -> T:
        """Run ``script`` on this dialect's tables. ``atomic``: in one transaction (False: a
        script of one statement, which PostgreSQL sends in autocommit); ``write=False``: it only reads."""

    def _jobs_changed(self) -> None:
        """The queue changed here (a dialect that remembers when the next job is due forgets it)."""

    # -- recordings ------------------------------------------------------------------------------

    async def create_recording(self, recording: Recording, events: Sequence[OutboxEvent] = ()) -> Recording:
        # Without events: one statement (the row, or the one that already exists).
        return await self._transact(lambda t: transactions.create(t, recording, events), atomic=bool(events))

    async def report_progress(self, upload_id: str, offset: int, events: Sequence[OutboxEvent] = ()) -> Recording:
        recording = await self._transact(lambda t: transactions.progress(t, upload_id, offset, events, self._clock()))
        if recording is None:  # raised here, after the commit: the events are kept all the same
            raise RecordingNotFound(upload_id)
        return recording

    async def mark_uploaded(
        self, upload_id: str, offset: int | None = None, events: Sequence[OutboxEvent] = ()
    ) -> tuple[Recording, bool]:
        self._jobs_changed()
        job_id = new_job_id()
        return await self._transact(lambda t: transactions.finish(t, upload_id, offset, events, self._clock(), job_id))

    async def delete_recording(self, upload_id: str, events: Sequence[OutboxEvent] = ()) -> bool:
        self._jobs_changed()
        return await self._transact(lambda t: transactions.delete(t, upload_id, events))

    async def get_recording(self, upload_id: str, owner: OwnerFilter = EVERYONE) -> Recording:
        return await self._transact(lambda t: transactions.get(t, upload_id, owner), write=False, atomic=False)

    async def list_recordings(
        self,
        owner: str | None,
        *,
        statuses: Collection[Status] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        check_page_size(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        wanted = None if statuses is None else [Status(s).value for s in statuses]
        return await self._transact(
            lambda t: transactions.page(t, owner, wanted, limit, after), write=False, atomic=False
        )

    async def stats(self, owner: str | None) -> StorageStats:
        return await self._transact(lambda t: transactions.stats(t, owner), write=False, atomic=False)

    async def not_yet_uploaded(self, after: str, limit: int) -> list[str]:
        return await self._transact(lambda t: t.not_yet_uploaded(after, limit), write=False, atomic=False)

    async def failed_before(self, cutoff: float, owner: OwnerFilter = EVERYONE) -> list[str]:
        return await self._transact(lambda t: t.failed_before(cutoff, owner), write=False, atomic=False)

    # -- jobs ------------------------------------------------------------------------------------

    async def list_jobs(
        self,
        owner: OwnerFilter = EVERYONE,
        statuses: Collection[JobStatus] = (JobStatus.QUEUED, JobStatus.RUNNING),
        limit: int = 100,
    ) -> list[Job]:
        check_page_size(limit)
        wanted = [JobStatus(s).value for s in statuses]
        return await self._transact(lambda t: transactions.jobs(t, owner, wanted, limit), write=False, atomic=False)

    async def queue_depth(self) -> QueueDepth:
        return queue_depth_from(await self._transact(lambda t: t.queue_counts(), write=False, atomic=False))

    async def claim_job(self) -> Claim | None:
        self._jobs_changed()

        def claim(t: Tables) -> Coroutine[Any, Any, Claim | None]:
            now = self._clock()
            return transactions.claim(t, now, self.instance, now + self.lease_seconds)

        # Each round is its own statement (PostgreSQL) or the rounds share one transaction (SQLite).
        return await self._transact(claim, atomic=False)

    async def next_due(self) -> float | None:
        return await self._transact(lambda t: t.next_job_due(), write=False, atomic=False)

    async def renew_lease(self, job_id: str, claim_token: int) -> bool:
        self._jobs_changed()
        return await self._transact(
            lambda t: t.renew_lease(job_id, claim_token, self._clock() + self.lease_seconds),
            write=self.uses_leases,
            atomic=False,
        )

    async def complete_job(
        self, job_id: str, claim_token: int, results: dict[str, Any], events: Sequence[OutboxEvent] = ()
    ) -> bool:
        self._jobs_changed()
        encoded = msgspec.json.encode(results).decode("utf-8")  # fail here, in the caller, if not JSON
        return await self._transact(
            lambda t: transactions.complete(t, job_id, claim_token, encoded, events, self._clock())
        )

    async def fail_attempt(
        self, job_id: str, claim_token: int, error: str, retry_in: float | None, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        self._jobs_changed()
        return await self._transact(
            lambda t: transactions.fail(t, job_id, claim_token, error, retry_in, events, self._clock())
        )

    async def recover_running(self) -> list[str]:
        if self.uses_leases:
            return []  # other instances may be running these jobs right now; expired leases are claimed instead
        return await self._transact(lambda t: transactions.requeue_running(t, EVERYONE, None, self._clock()))

    async def retry(self, owner: str | None, stuck_before: float | None = None) -> list[str]:
        self._jobs_changed()
        return await self._transact(lambda t: transactions.retry(t, owner, stuck_before, self._clock(), new_job_id))

    # -- hook outbox -----------------------------------------------------------------------------

    async def enqueue_events(self, events: Sequence[OutboxEvent]) -> None:
        if events:
            await self._transact(lambda t: t.insert_events(events))

    async def claim_events(self, holder: str, lease_seconds: float, limit: int) -> list[OutboxEvent]:
        now = self._clock()
        claimed = await self._transact(lambda t: t.claim_events(holder, now, now + lease_seconds, limit), atomic=False)
        return sorted(claimed, key=lambda event: (event.not_before, event.created_at))

    async def event_delivered(self, event_id: str, target: str, holder: str) -> bool:
        return await self._transact(lambda t: t.delete_event(event_id, target, holder), atomic=False)

    async def event_failed(self, event_id: str, target: str, holder: str, error: str, retry_at: float | None) -> bool:
        """Reschedule the row at ``retry_at``, or drop it when None (retention over, or not retryable)."""
        if retry_at is None:
            return await self.event_delivered(event_id, target, holder)
        return await self._transact(
            lambda t: t.reschedule_event(event_id, target, holder, retry_at, error[:ERROR_CHARS]), atomic=False
        )

    async def release_events(self, holder: str) -> int:
        return await self._transact(lambda t: t.release_events(holder), atomic=False)

    async def drop_events_before(self, cutoff: float, limit: int) -> list[OutboxEvent]:
        return await self._transact(lambda t: t.drop_events(cutoff, self._clock(), limit), atomic=False)

    async def next_event_due(self) -> float | None:
        return await self._transact(lambda t: t.next_event_due(), write=False, atomic=False)

    async def count_events(self) -> int:
        return await self._transact(lambda t: t.count_events(), write=False, atomic=False)

    async def pending_events(self, limit: int = 100) -> list[OutboxEvent]:
        return await self._transact(lambda t: t.pending_events(limit), write=False, atomic=False)
