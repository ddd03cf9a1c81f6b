"""The transition table: every pair of status and event, and random walks through it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tusd_py.pipeline.states import (
    JOB_TRANSITIONS,
    NEW_JOB,
    TRANSITIONS,
    UPLOAD_COMPLETE,
    Event,
    IllegalTransition,
    JobStatus,
    Status,
    allowed_events,
    job_transition,
    moves,
    transition,
)

S, E = Status, Event

# Written out independently of the table under test: the spec of the model.
LEGAL = {
    (S.RECORDED, E.BYTES_RECEIVED): S.UPLOADING,
    (S.RECORDED, E.UPLOAD_FINISHED): S.UPLOADED,
    (S.UPLOADING, E.BYTES_RECEIVED): S.UPLOADING,
    (S.UPLOADING, E.UPLOAD_FINISHED): S.UPLOADED,
    (S.UPLOADED, E.JOB_CLAIMED): S.PROCESSING,
    (S.PROCESSING, E.JOB_CLAIMED): S.PROCESSING,
    (S.PROCESSING, E.ATTEMPT_FAILED): S.PROCESSING,
    (S.PROCESSING, E.JOB_SUCCEEDED): S.COMPLETED,
    (S.PROCESSING, E.JOB_FAILED): S.FAILED,
    (S.PROCESSING, E.REQUEUE): S.UPLOADED,
    (S.FAILED, E.RETRY): S.PROCESSING,
}
ALL_PAIRS = list(itertools.product(Status, Event))


@pytest.mark.parametrize(("status", "event"), list(LEGAL))
def test_legal_transition(status: Status, event: Event) -> None:
    assert transition(status, event) is LEGAL[(status, event)]


@pytest.mark.parametrize(("status", "event"), [pair for pair in ALL_PAIRS if pair not in LEGAL])
def test_illegal_transition_is_refused(status: Status, event: Event) -> None:
    with pytest.raises(IllegalTransition) as raised:
        transition(status, event)
    assert raised.value.status is status and raised.value.event is event
    assert status.value in str(raised.value) and event.value in str(raised.value)


def test_table_covers_every_status_and_nothing_else() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert {(s, e) for s, events in TRANSITIONS.items() for e in events} == set(LEGAL)
    assert allowed_events(S.COMPLETED) == frozenset()


def test_every_status_is_reachable_from_recorded() -> None:
    seen, frontier = {S.RECORDED}, [S.RECORDED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()].values():
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(Status)


@given(st.lists(st.sampled_from(list(Event)), max_size=40))
def test_random_event_sequences(events: list[Event]) -> None:
    status = S.RECORDED
    for event in events:
        before = status
        if (before, event) in LEGAL:
            status = transition(before, event)
        else:
            with pytest.raises(IllegalTransition):
                transition(before, event)
            continue  # a refused event leaves the status as it was
        # Invariants: all bytes stored stays true; completed is terminal; nothing returns to recorded.
        if before in UPLOAD_COMPLETE:
            assert status in UPLOAD_COMPLETE
        assert before is not S.COMPLETED
        assert status is not S.RECORDED
        if status is S.UPLOADING:
            assert before in (S.RECORDED, S.UPLOADING)


def test_moves_gives_an_events_sources_and_its_one_target() -> None:
    sources, target = moves(Event.JOB_CLAIMED)
    assert sources == {Status.UPLOADED, Status.PROCESSING} and target is Status.PROCESSING
    for status in Status:  # the same answer as transition(), status by status
        if status in sources:
            assert transition(status, Event.JOB_CLAIMED) is target
        else:
            with pytest.raises(IllegalTransition):
                transition(status, Event.JOB_CLAIMED)
    assert moves(Event.UPLOAD_FINISHED) == ({Status.RECORDED, Status.UPLOADING}, Status.UPLOADED)


def test_moves_refuses_an_event_whose_next_status_depends_on_the_current_one(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {status: dict(follows) for status, follows in TRANSITIONS.items()}
    table[Status.FAILED][Event.JOB_CLAIMED] = Status.FAILED
    monkeypatch.setattr("tusd_py.pipeline.states.TRANSITIONS", table)
    with pytest.raises(ValueError, match="leads to 2 statuses"):
        moves(Event.JOB_CLAIMED)


# -- the job's side of the same events ------------------------------------------------------------

J = JobStatus
JOB_LEGAL = {
    (J.QUEUED, E.JOB_CLAIMED): J.RUNNING,
    (J.RUNNING, E.JOB_CLAIMED): J.RUNNING,  # a lease ran out: another claimant takes it
    (J.RUNNING, E.ATTEMPT_FAILED): J.QUEUED,
    (J.RUNNING, E.JOB_SUCCEEDED): J.DONE,
    (J.RUNNING, E.JOB_FAILED): J.DEAD,
    (J.RUNNING, E.REQUEUE): J.QUEUED,
    (J.DEAD, E.RETRY): J.QUEUED,
}


@pytest.mark.parametrize(("status", "event"), list(JOB_LEGAL))
def test_legal_job_transition(status: JobStatus, event: Event) -> None:
    assert job_transition(status, event) is JOB_LEGAL[(status, event)]


@pytest.mark.parametrize(
    ("status", "event"), [pair for pair in itertools.product(JobStatus, Event) if pair not in JOB_LEGAL]
)
def test_illegal_job_transition_is_refused_by_name(status: JobStatus, event: Event) -> None:
    with pytest.raises(IllegalTransition, match=f"event '{event.value}' is not allowed in a job in status") as raised:
        job_transition(status, event)
    assert raised.value.status is status and raised.value.event is event


def test_a_job_moves_on_the_events_that_move_its_recording_while_it_is_processed() -> None:
    # Every event the job table knows moves a recording too: one event, both rows, one transaction.
    job_events = {event for follows in JOB_TRANSITIONS.values() for event in follows}
    recording_events = {event for follows in TRANSITIONS.values() for event in follows}
    assert job_events <= recording_events
    assert NEW_JOB is JobStatus.QUEUED
