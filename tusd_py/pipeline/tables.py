"""What a store's transaction may ask its database: the statements each dialect writes in its SQL.

The rules of the store are written once, in :mod:`tusd_py.pipeline.transactions`, as coroutines
over a :class:`Tables`; :mod:`~tusd_py.pipeline.sqlite_tables` and
:mod:`~tusd_py.pipeline.postgres_tables` implement it and hold nothing but their statements. A
``Tables`` is bound to one connection, inside one transaction (or, for scripts of one statement,
an autocommit connection). SQLite's methods never suspend: they run on the store's own thread,
driven by :func:`~tusd_py.pipeline.transactions.run_to_end`. PostgreSQL's await the driver.

"Locked" means ``FOR UPDATE`` where the dialect has several writers; SQLite's ``BEGIN IMMEDIATE``
already serialises every writer, so it has nothing to add.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tusd_py.pipeline.models import OutboxEvent, Recording
from tusd_py.pipeline.rows import Row
from tusd_py.pipeline.store import OwnerFilter

#: A claim round's answer: the claimed job (with its recording's ``owner``) and the recording it
#: moved to ``processing``, or None in its place when the recording refused the claim.
ClaimRound = tuple[Row, Row | None]


class Tables(Protocol):
    """One dialect's statements, bound to one connection."""

    #: Jobs carry a lease (``claimed_by``, ``lease_until``): set by a claim, cleared by leaving ``running``.
    leases: bool

    # -- recordings ------------------------------------------------------------------------------

    async def insert_recording(self, recording: Recording) -> Row | None:
        """The new row, or None when the id exists already (the stored row is left as it is)."""

    async def load(self, upload_id: str, *, lock: bool = True) -> Row:
        """The recording's row (locked, unless ``lock=False``); raise ``RecordingNotFound``."""

    async def recording_status(self, upload_id: str) -> str | None:
        """The recording's status, or None when it is missing."""

    async def update_recording(self, upload_id: str, fields: Mapping[str, object]) -> None:
        """Set these columns on the recording (one UPDATE)."""

    async def delete_recording(self, upload_id: str) -> bool:
        """Remove the recording and its job; False if there was none."""

    async def page(
        self, owner: str | None, statuses: Sequence[str] | None, limit: int, after: tuple[float, str] | None
    ) -> Sequence[Row]:
        """Up to ``limit`` of ``owner``'s recordings below the keyset position ``after``, newest first."""

    async def totals(self, owner: str | None) -> list[tuple[Any, ...]]:
        """``(status, count, stored bytes)`` per status of ``owner``'s recordings."""

    async def not_yet_uploaded(self, after: str, limit: int) -> list[str]:
        """Ids above ``after`` of recordings still ``recorded`` or ``uploading``, in id order."""

    async def failed_before(self, cutoff: float, owner: OwnerFilter) -> list[str]:
        """Ids of ``failed`` recordings last updated before ``cutoff``, in id order."""

    async def failed_recordings(self, owner: str | None) -> Sequence[Row]:
        """``owner``'s ``failed`` recordings, locked, oldest first."""

    # -- jobs ------------------------------------------------------------------------------------

    async def insert_job(self, job_id: str, upload_id: str, now: float) -> bool:
        """A new job for the upload (``NEW_JOB``, due now); False if the upload has one already."""

    async def job_of(self, upload_id: str) -> Row:
        """The upload's job, with its recording's ``owner``."""

    async def current_claim(self, job_id: str, claim_token: int) -> Row | None:
        """The job, locked, if it is ``running`` under this claim token."""

    async def update_job(self, job_id: str, fields: Mapping[str, object], *, claim_token: int | None = None) -> None:
        """Set these columns on the job (only while its token is ``claim_token``, when given)."""

    async def claim_round(self, now: float, claimant: str | None, lease_until: float) -> ClaimRound | None:
        """Claim the next due job and move its recording (``job_claimed`` on both); None: none is due."""

    async def renew_lease(self, job_id: str, claim_token: int, lease_until: float) -> bool:
        """Extend a current claim's lease; False if the claim is no longer current."""

    async def next_job_due(self) -> float | None:
        """When the next job is due (queued: its time; a lease store: also the earliest lease end)."""

    async def running_jobs(self, owner: OwnerFilter, claimed_before: float | None) -> Sequence[Row]:
        """``owner``'s running jobs (claimed before ``claimed_before``, when given), locked, oldest first."""

    async def job_rows(self, owner: OwnerFilter, statuses: Sequence[str], limit: int) -> Sequence[Row]:
        """Up to ``limit`` jobs in these statuses, soonest first, with their recording's ``owner``."""

    async def queue_counts(self) -> list[tuple[Any, ...]]:
        """``(status, count, oldest created_at)`` of queued and running jobs, one statement."""

    async def jobs_queued(self) -> None:
        """Jobs were queued in this transaction: tell other processes' idle workers (at commit)."""

    # -- hook outbox -----------------------------------------------------------------------------

    async def insert_events(self, events: Sequence[OutboxEvent]) -> None:
        """Write the events; one written twice (a retried transaction) stays one row."""

    async def claim_events(self, holder: str, now: float, lease_until: float, limit: int) -> list[OutboxEvent]:
        """Lease up to ``limit`` due, unleased rows to ``holder``; return them, this claim counted."""

    async def delete_event(self, event_id: str, target: str, holder: str) -> bool:
        """Remove the row while ``holder`` holds its lease."""

    async def reschedule_event(self, event_id: str, target: str, holder: str, retry_at: float, error: str) -> bool:
        """Move the row to ``retry_at`` and end its lease, while ``holder`` holds it."""

    async def release_events(self, holder: str) -> int:
        """End every lease ``holder`` holds."""

    async def drop_events(self, cutoff: float, now: float, limit: int) -> list[OutboxEvent]:
        """Remove up to ``limit`` unleased rows created before ``cutoff``, oldest first; return them."""

    async def next_event_due(self) -> float | None:
        """When the earliest row may be claimed."""

    async def count_events(self) -> int:
        """Every row."""

    async def pending_events(self, limit: int) -> list[OutboxEvent]:
        """Up to ``limit`` rows, oldest first."""
