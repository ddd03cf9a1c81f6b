"""The upload-state questions, one by one, over the cases that tell them apart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tusd_py.model.upload import UploadInfo
from tusd_py.protocol import upload_state as state


def info(length: int | None = 10, offset: int = 0, **kw: object) -> UploadInfo:
    return UploadInfo(id="u", length=length, offset=offset, updated_at=1000.0, **kw)  # type: ignore[arg-type]


def test_complete_and_finished_are_different_facts() -> None:
    crashed = info(offset=10)  # every byte in, finish never ran
    assert state.is_complete(crashed) and not state.is_finished(crashed) and state.needs_finish(crashed)
    done = info(offset=10, finished_at=2000.0)
    assert state.is_complete(done) and state.is_finished(done) and not state.needs_finish(done)
    assert not state.is_complete(info(length=None, offset=10))  # unknown length: never complete


def test_a_final_waits_for_its_partials_and_takes_no_bytes() -> None:
    final = info(length=None, concat="final", partials=["a", "b"])
    assert state.awaits_partials(final) and not state.reports_offset(final)
    assert state.refuses_bytes(final) is not None
    assert not state.needs_finish(info(offset=10, concat="final"))  # assembly finishes it, not recovery
    assembled = info(offset=10, concat="final", finished_at=2000.0)
    assert not state.awaits_partials(assembled) and state.reports_offset(assembled)
    assert state.refuses_bytes(info()) is None and state.refuses_bytes(info(concat="partial")) is None


def test_only_incomplete_unfinished_uploads_expire() -> None:
    assert state.expires_at(info(offset=3), 60) == 1060.0
    assert state.is_expired(info(offset=3), 60, now=1060.0) and not state.is_expired(info(offset=3), 60, now=1059.9)
    assert state.expires_at(info(offset=3), 0) is None  # expiry off
    assert state.expires_at(info(offset=10), 60) is None  # complete
    assert state.expires_at(info(length=None, finished_at=5.0), 60) is None  # finished


def test_digest_and_quota_follow_the_finish() -> None:
    assert not state.publishes_digest(info(offset=10, sha256="ab" * 32))  # not finished yet
    assert state.publishes_digest(info(offset=10, sha256="ab" * 32, finished_at=5.0))
    assert state.counts_as_unfinished(info(offset=10)) and not state.counts_as_unfinished(info(finished_at=5.0))


@given(length=st.one_of(st.none(), st.integers(0, 100)), offset=st.integers(0, 100))
def test_complete_means_offset_reached_a_known_length(length: int | None, offset: int) -> None:
    assert state.is_complete(info(length=length, offset=offset)) == (length is not None and offset == length)
