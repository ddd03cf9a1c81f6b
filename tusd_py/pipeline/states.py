"""The status models of a recording and of its job: every rule about which status may follow which.

Like h11's ``_state.py``, the rules are data: :data:`TRANSITIONS` maps ``{status: {event: next}}``
and :func:`transition` is the only function that applies it. Nothing else in the pipeline
compares statuses to decide whether a change is allowed; stores call :func:`transition` and let
:class:`IllegalTransition` propagate, so an impossible change is refused in exactly one place.

The happy path of a recording::

    recorded --bytes_received--> uploading --upload_finished--> uploaded
        --job_claimed--> processing --job_succeeded--> completed

and the paths a real system needs besides it:

* ``recorded --upload_finished--> uploaded``: an empty upload, or creation-with-upload that
  carried every byte in the POST, never passes through ``uploading``.
* ``processing --attempt_failed--> processing``: one attempt failed and the job waits for its
  backoff; ``processing --job_claimed--> processing`` when it is picked up again.
* ``processing --job_failed--> failed``: the attempts are used up.
* ``failed --retry--> processing``: a user (sync) or operator asked for another round.
* ``processing --requeue--> uploaded``: the process died while a job ran (or the job hung past
  its deadline); the job is queued again as if it had never started.

Termination is not a transition: a terminated upload leaves the model entirely (its row is
deleted, from any status), because there is nothing left to process or to show.

The job of a recording moves on the same events (:data:`JOB_TRANSITIONS`, applied by
:func:`job_transition`), in the same transaction: the table says which job status goes with each
event, so no store decides it on its own. A job is born ``queued`` (:data:`NEW_JOB`, when the
upload finished, or when a retry finds its job lost); it never leaves the model but with its
recording.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    RECORDED = "recorded"  # created, no bytes stored yet
    UPLOADING = "uploading"  # some bytes stored
    UPLOADED = "uploaded"  # last byte stored; a job is queued
    PROCESSING = "processing"  # a job has been claimed at least once (may be waiting for a retry)
    COMPLETED = "completed"
    FAILED = "failed"


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting to be claimed, not before ``not_before``
    RUNNING = "running"  # claimed by a worker
    DONE = "done"  # every step succeeded
    DEAD = "dead"  # attempts used up (the recording is ``failed``), or its recording refused the claim


class Event(StrEnum):
    BYTES_RECEIVED = "bytes_received"
    UPLOAD_FINISHED = "upload_finished"
    JOB_CLAIMED = "job_claimed"
    ATTEMPT_FAILED = "attempt_failed"
    JOB_SUCCEEDED = "job_succeeded"
    JOB_FAILED = "job_failed"
    RETRY = "retry"
    REQUEUE = "requeue"


TRANSITIONS: dict[Status, dict[Event, Status]] = {
    Status.RECORDED: {
        Event.BYTES_RECEIVED: Status.UPLOADING,
        Event.UPLOAD_FINISHED: Status.UPLOADED,
    },
    Status.UPLOADING: {
        # Progress reports repeat while bytes keep arriving.
        Event.BYTES_RECEIVED: Status.UPLOADING,
        Event.UPLOAD_FINISHED: Status.UPLOADED,
    },
    Status.UPLOADED: {
        Event.JOB_CLAIMED: Status.PROCESSING,
    },
    Status.PROCESSING: {
        Event.JOB_CLAIMED: Status.PROCESSING,
        Event.ATTEMPT_FAILED: Status.PROCESSING,
        Event.JOB_SUCCEEDED: Status.COMPLETED,
        Event.JOB_FAILED: Status.FAILED,
        Event.REQUEUE: Status.UPLOADED,
    },
    Status.COMPLETED: {},
    Status.FAILED: {
        Event.RETRY: Status.PROCESSING,
    },
}

#: The job's side of the same events. ``running --job_claimed--> running``: a lease store hands a
#: job whose lease ran out to another claimant. ``running --job_failed--> dead`` also buries a job
#: whose recording refused the claim (data edited by hand), so it cannot block the queue.
JOB_TRANSITIONS: dict[JobStatus, dict[Event, JobStatus]] = {
    JobStatus.QUEUED: {
        Event.JOB_CLAIMED: JobStatus.RUNNING,
    },
    JobStatus.RUNNING: {
        Event.JOB_CLAIMED: JobStatus.RUNNING,
        Event.ATTEMPT_FAILED: JobStatus.QUEUED,
        Event.JOB_SUCCEEDED: JobStatus.DONE,
        Event.JOB_FAILED: JobStatus.DEAD,
        Event.REQUEUE: JobStatus.QUEUED,
    },
    JobStatus.DONE: {},
    JobStatus.DEAD: {
        Event.RETRY: JobStatus.QUEUED,
    },
}
#: The status a job is created in.
NEW_JOB = JobStatus.QUEUED

#: Statuses in which every byte of the upload is stored.
UPLOAD_COMPLETE = frozenset({Status.UPLOADED, Status.PROCESSING, Status.COMPLETED, Status.FAILED})


class IllegalTransition(Exception):
    """``event`` cannot happen to a recording (or, for a :class:`JobStatus`, a job) in ``status``."""

    def __init__(self, status: Status | JobStatus, event: Event) -> None:
        subject = "a job in status" if isinstance(status, JobStatus) else "status"
        super().__init__(f"event {event.value!r} is not allowed in {subject} {status.value!r}")
        self.status = status
        self.event = event


def transition(status: Status, event: Event) -> Status:
    """Return the status that follows ``event`` in ``status``; raise :class:`IllegalTransition`."""
    try:
        return TRANSITIONS[status][event]
    except KeyError:
        raise IllegalTransition(status, event) from None


def job_transition(status: JobStatus, event: Event) -> JobStatus:
    """Return the job status that follows ``event`` in ``status``; raise :class:`IllegalTransition`."""
    try:
        return JOB_TRANSITIONS[status][event]
    except KeyError:
        raise IllegalTransition(status, event) from None


def allowed_events(status: Status) -> frozenset[Event]:
    return frozenset(TRANSITIONS[status])


def moves(event: Event) -> tuple[frozenset[Status], Status]:
    """The statuses ``event`` may happen in and the one status it leads to from each of them, for
    a store that applies the rule inside one statement (``WHERE status = ANY(...)``). Raises
    ValueError for an event whose next status depends on the current one."""
    sources = {status: follows[event] for status, follows in TRANSITIONS.items() if event in follows}
    targets = set(sources.values())
    if len(targets) != 1:
        raise ValueError(f"event {event.value!r} leads to {len(targets)} statuses")
    return frozenset(sources), targets.pop()
