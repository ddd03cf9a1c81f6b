"""The store's interfaces: :class:`Recordings`, :class:`JobQueue`, :class:`EventOutbox`, and
:class:`RecordingStore`, the durable home of all three (one database, one transaction per change).

Callers type against the narrow interface they use (the worker pool a :class:`JobQueue`, webhook
delivery an :class:`EventOutbox`). The rules every store applies are written once in
:mod:`tusd_py.pipeline.transactions` (over each dialect's SQL, :mod:`~tusd_py.pipeline.tables`);
the pipeline talks only to these interfaces, so the default :class:`~tusd_py.pipeline.sqlite_store.
SQLiteRecordingStore` can be replaced by a shared database when several servers run. Every method
that changes a status does so through :func:`tusd_py.pipeline.states.transition` inside one
transaction together with the job row it concerns, so a crash never leaves a recording and its
job disagreeing.

Guarantees an implementation must give:

* at most one job per upload (``mark_uploaded`` enqueues idempotently);
* ``claim_job`` hands a queued, due job to exactly one caller;
* a report (``complete_job`` / ``fail_attempt``) is applied only with the ``claim_token`` of the
  claim it answers, and is otherwise ignored (returns False);
* the hook outbox: every method that records a change takes the ``events`` reporting it
  (:class:`OutboxEvent`) and writes them **in the same transaction** (also when the recording is
  missing, for ``report_progress`` / ``delete_recording``: the event still happened); a claimed
  outbox row is leased to one holder, and only that holder's report changes it;
* a claim holds the job for one claimant at a time; steps therefore run *at least once*, and
  another time only after the previous claimant lost its claim (see :mod:`tusd_py.pipeline.steps`).

Two models of "a worker died while running a job", stated by :attr:`RecordingStore.uses_leases`:

* **one process** (SQLite, ``uses_leases = False``): ``recover_running`` puts every ``running``
  job back to ``queued``; call it once at start-up, before any worker of this store runs (it
  assumes no other process is working the same queue). ``renew_lease`` only checks the claim.
* **leases** (PostgreSQL, ``uses_leases = True``): a claim records ``claimed_by`` and
  ``lease_until``; the worker renews the lease while its steps run, and a ``running`` job whose
  lease ran out is claimable again by any live instance (``claim_job``), with a new claim token,
  so the dead or paused claimant's late report is ignored. ``recover_running`` does nothing
  (other instances may be running jobs right now); ``next_due`` includes the earliest lease end.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any, Literal

from tusd_py.model.upload import UPLOAD_ID
from tusd_py.pipeline.models import Claim, Job, JobStatus, OutboxEvent, Page, QueueDepth, Recording, StorageStats
from tusd_py.pipeline.states import Status

MAX_PAGE_SIZE = 500
LIVE_JOBS = (JobStatus.QUEUED, JobStatus.RUNNING)


def queue_depth_from(rows: Collection[tuple[str, int, float | None]]) -> QueueDepth:
    """``(status, count, oldest created_at)`` rows of a ``GROUP BY status`` as a :class:`QueueDepth`."""
    by_status = {str(status): 0 for status in LIVE_JOBS}
    oldest = None
    for status, count, first in rows:
        by_status[status] = int(count)
        if status == JobStatus.QUEUED and first is not None:
            oldest = float(first)
    return QueueDepth(by_status=by_status, oldest_queued_at=oldest)


class _Everyone(enum.Enum):
    EVERYONE = "everyone"


#: Owner filter meaning "all users" for operator-wide calls (queue listing, cleanup).
EVERYONE = _Everyone.EVERYONE
OwnerFilter = str | None | Literal[_Everyone.EVERYONE]


class RecordingNotFound(Exception):
    """No recording with this id (for this owner): never created, terminated, or cleaned up."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"no recording {upload_id!r}")
        self.upload_id = upload_id


class InvalidCursor(ValueError):
    """A pagination cursor that this store did not issue (or that was tampered with)."""


#: A page cursor: the (created_at, id) of the last recording of the previous page, in the clear.
#: Every string of this form is a valid keyset position (there is no cursor the store "did not
#: issue"), so the OpenAPI document can publish the pattern and mean it.
CURSOR_PATTERN = r"[0-9]{1,20}(\.[0-9]{1,20})?(e[-+]?[0-9]{1,3})?~" + UPLOAD_ID.pattern
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(created_at: float, upload_id: str) -> str:
    # repr() round-trips the float exactly, which the keyset comparison needs.
    return f"{created_at!r}~{upload_id}"


def decode_cursor(cursor: str) -> tuple[float, str]:
    if not _CURSOR.fullmatch(cursor):
        raise InvalidCursor(f"invalid cursor {cursor[:80]!r}")
    created_at, upload_id = cursor.split("~", 1)
    return float(created_at), upload_id


def check_page_size(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"page size must be between 1 and {MAX_PAGE_SIZE}")


class Recordings(abc.ABC):
    """Recordings: created, moved by upload progress and finish, read, listed, removed."""

    @abc.abstractmethod
    async def create_recording(self, recording: Recording, events: Sequence[OutboxEvent] = ()) -> Recording:
        """Insert a ``recorded`` recording; if the id exists already, return the stored one unchanged."""

    @abc.abstractmethod
    async def report_progress(self, upload_id: str, offset: int, events: Sequence[OutboxEvent] = ()) -> Recording:
        """Record stored bytes: ``bytes_received`` while uploading; a late report after the upload
        finished is ignored (offsets only grow). Raise :class:`RecordingNotFound`."""

    @abc.abstractmethod
    async def mark_uploaded(
        self, upload_id: str, offset: int | None = None, events: Sequence[OutboxEvent] = ()
    ) -> tuple[Recording, bool]:
        """Apply ``upload_finished`` and enqueue the job in one transaction.

        Returns ``(recording, enqueued)``. Calling it again for an upload whose bytes are all
        stored is a no-op returning ``enqueued=False``: finishing may be redelivered after a crash.
        """

    @abc.abstractmethod
    async def delete_recording(self, upload_id: str, events: Sequence[OutboxEvent] = ()) -> bool:
        """Remove the recording and its job (termination). False if it did not exist."""

    @abc.abstractmethod
    async def get_recording(self, upload_id: str, owner: OwnerFilter = EVERYONE) -> Recording:
        """The recording, if it belongs to ``owner``; else raise :class:`RecordingNotFound`."""

    @abc.abstractmethod
    async def list_recordings(
        self,
        owner: str | None,
        *,
        statuses: Collection[Status] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """One page of ``owner``'s recordings, newest first; raise :class:`InvalidCursor`."""

    @abc.abstractmethod
    async def stats(self, owner: str | None) -> StorageStats:
        """Count and stored bytes per status for ``owner``."""

    @abc.abstractmethod
    async def not_yet_uploaded(self, after: str, limit: int) -> list[str]:
        """Ids above ``after`` (in id order, every owner) of recordings still ``recorded`` or
        ``uploading``: start-up recovery checks whether storage finished any of them."""

    @abc.abstractmethod
    async def failed_before(self, cutoff: float, owner: OwnerFilter = EVERYONE) -> list[str]:
        """Ids of ``failed`` recordings last updated before ``cutoff`` (nothing is removed)."""


class JobQueue(abc.ABC):
    """The processing jobs: claimed under a claim token (and a lease), reported, retried."""

    #: True: expired leases hand jobs to other instances; False: ``recover_running`` at start-up.
    uses_leases: bool = False
    #: Seconds a claim stays valid without renewal (lease stores); workers renew well before.
    lease_seconds: float = 60.0

    #: ``on_job_available`` fires for this process's own enqueues too (PostgreSQL's NOTIFY reaches
    #: every listener, the sender's included): the pipeline then leaves the waking to it, so one
    #: enqueue wakes one worker, not two (the second would claim nothing).
    announces_own_enqueues: bool = False

    def on_job_available(self, callback: Callable[[], None]) -> None:  # noqa: B027 - optional hook
        """Call ``callback`` when another process enqueued a job (e.g. PostgreSQL NOTIFY). The
        default does nothing: in one process the pipeline wakes its own workers."""

    @abc.abstractmethod
    async def list_jobs(
        self,
        owner: OwnerFilter = EVERYONE,
        statuses: Collection[JobStatus] = (JobStatus.QUEUED, JobStatus.RUNNING),
        limit: int = 100,
    ) -> list[Job]:
        """Jobs in the queue, soonest first."""

    @abc.abstractmethod
    async def queue_depth(self) -> QueueDepth:
        """Queued and running jobs counted in one statement (a metrics scrape; no row is read)."""

    @abc.abstractmethod
    async def claim_job(self) -> Claim | None:
        """Take the next due queued job (``job_claimed``), or None if none is due."""

    @abc.abstractmethod
    async def next_due(self) -> float | None:
        """When the earliest queued job becomes due, or (lease stores) the earliest lease runs out
        (None: nothing to wait for)."""

    @abc.abstractmethod
    async def renew_lease(self, job_id: str, claim_token: int) -> bool:
        """Extend the claim's lease by ``lease_seconds`` from now. False if the claim is no longer
        current (requeued, taken by another instance after its lease ran out, or removed): the
        worker then stops the job, whose result would be ignored anyway."""

    @abc.abstractmethod
    async def complete_job(
        self, job_id: str, claim_token: int, results: dict[str, Any], events: Sequence[OutboxEvent] = ()
    ) -> bool:
        """``job_succeeded``: store the step results. False if the claim is no longer current."""

    async def complete_and_claim(
        self, job_id: str, claim_token: int, results: dict[str, Any]
    ) -> tuple[bool, Claim | None] | None:
        """``complete_job`` (no events) and ``claim_job`` in one round trip, for a store that can:
        (completed, the next claim or None when none is due). None: this store cannot (the
        default); the worker completes and claims one by one."""
        return None

    @abc.abstractmethod
    async def fail_attempt(
        self, job_id: str, claim_token: int, error: str, retry_in: float | None, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        """Record a failed attempt: requeue after ``retry_in`` seconds (``attempt_failed``) or, when
        None, give up (``job_failed``). False if the claim is no longer current (then ``events``
        are not written either: the claim that is current will report)."""

    @abc.abstractmethod
    async def recover_running(self) -> list[str]:
        """Requeue every ``running`` job (``requeue``); return the upload ids. Start-up only, and
        only for one-process stores: a lease store returns [] (expired leases are claimed instead)."""

    @abc.abstractmethod
    async def retry(self, owner: str | None, stuck_before: float | None = None) -> list[str]:
        """Re-enqueue ``owner``'s failed recordings (``retry``) and, if ``stuck_before`` is given,
        those whose job has been running since before it (``requeue``). Return the upload ids."""


class EventOutbox(abc.ABC):
    """The hook outbox: events written with the changes they report, delivered under leases."""

    @abc.abstractmethod
    async def enqueue_events(self, events: Sequence[OutboxEvent]) -> None:
        """Write events that go with no recording change (e.g. throttled-in progress events)."""

    @abc.abstractmethod
    async def claim_events(self, holder: str, lease_seconds: float, limit: int) -> list[OutboxEvent]:
        """Lease up to ``limit`` due rows to ``holder`` (``attempts`` counts this claim)."""

    @abc.abstractmethod
    async def event_delivered(self, event_id: str, target: str, holder: str) -> bool:
        """The target took it: remove the row. False if ``holder`` no longer holds its lease."""

    @abc.abstractmethod
    async def event_failed(self, event_id: str, target: str, holder: str, error: str, retry_at: float | None) -> bool:
        """Reschedule the row at ``retry_at`` and release the lease, or remove it when None."""

    @abc.abstractmethod
    async def release_events(self, holder: str) -> int:
        """End ``holder``'s leases (it is stopping): its rows are claimable again at once."""

    @abc.abstractmethod
    async def drop_events_before(self, cutoff: float, limit: int) -> list[OutboxEvent]:
        """Remove up to ``limit`` unleased rows created before ``cutoff`` (the retention), oldest
        first; return them. Bounded, so one round never takes a whole expired backlog at once."""

    @abc.abstractmethod
    async def next_event_due(self) -> float | None:
        """When the earliest row may be claimed (None: the outbox is empty)."""

    @abc.abstractmethod
    async def count_events(self) -> int:
        """Rows waiting for delivery (the outbox gauge): a whole count, so per scrape, not per round."""

    @abc.abstractmethod
    async def pending_events(self, limit: int = 100) -> list[OutboxEvent]:
        """Rows waiting for delivery, oldest first (operators, tests)."""


class RecordingStore(Recordings, JobQueue, EventOutbox):
    """All three in one database. All methods are coroutines and must not block the event loop."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Create or migrate the schema and get ready; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the database; the store can be opened again."""
