"""The resumable-upload draft's pure rules: the version table, field parsing, limits, decisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tusd_py.model.errors import TusError
from tusd_py.protocol.draft_decisions import (
    COMPLETED_UPLOAD,
    INCONSISTENT_LENGTH,
    MISMATCHING_OFFSET,
    as_problem,
    decide_append,
    decide_creation,
    error_says_complete,
)
from tusd_py.protocol.draft_fields import (
    completeness,
    disposition_filename,
    format_limits,
    parse_boolean,
    parse_integer,
    parse_limits,
    representation_metadata,
    upload_limits,
)
from tusd_py.protocol.draft_versions import LATEST, VERSIONS, draft_version


def test_the_table_names_each_difference_once() -> None:
    assert sorted(VERSIONS) == [3, 4, 5, 6, 7, 8, 9] and LATEST == 9
    assert VERSIONS[3].complete_field == "Upload-Incomplete"
    assert {v.complete_field for n, v in VERSIONS.items() if n > 3} == {"Upload-Complete"}
    assert [n for n, v in VERSIONS.items() if v.append_media_type] == [6, 7, 8, 9]
    assert [n for n, v in VERSIONS.items() if v.has_limits] == [6, 7, 8, 9]
    assert VERSIONS[6].age_key == "expires" and {VERSIONS[n].age_key for n in (7, 8, 9)} == {"max-age"}
    assert [n for n, v in VERSIONS.items() if v.limits_in_104] == [8, 9]
    assert {v.head_status for v in VERSIONS.values()} == {204}
    assert [VERSIONS[n].append_status for n in (3, 5, 6, 7, 8, 9)] == [201, 201, 201, 204, 204, 204]
    assert [n for n, v in VERSIONS.items() if v.get_retrieves_offset] == [9]
    assert [n for n, v in VERSIONS.items() if v.complete_means_processed] == [9]


def test_version_9_differs_from_8_only_in_the_columns_draft_12_changed() -> None:
    eight, nine = VERSIONS[8], VERSIONS[9]
    changed = {
        name
        for name in eight.__dataclass_fields__
        if name not in ("number", "drafts") and getattr(eight, name) != getattr(nine, name)
    }
    assert changed == {"get_retrieves_offset", "complete_means_processed"}


@pytest.mark.parametrize("value", [None, "", "2", "10", "abc", "-6", "6.0", "\u0666", "0006x"])
def test_unknown_or_missing_versions_are_not_served(value: str | None) -> None:
    assert draft_version(value) is None


def test_versions_are_read_by_number() -> None:
    assert draft_version(" 6 ") is VERSIONS[6]


@pytest.mark.parametrize(
    ("value", "expected"), [("?1", True), ("?0", False), ("?1;a=b", True), ("1", None), ("true", None), (None, None)]
)
def test_booleans_are_structured_fields(value: str | None, expected: bool | None) -> None:
    assert parse_boolean(value) is expected


def test_v3_reads_upload_incomplete_inverted() -> None:
    assert completeness(VERSIONS[3], "?0") is True
    assert completeness(VERSIONS[3], "?1") is False
    assert completeness(VERSIONS[8], "?1") is True
    assert VERSIONS[3].complete_value(True) == "?0" and VERSIONS[8].complete_value(True) == "?1"


@given(st.integers(min_value=0, max_value=10**15 - 1))
def test_integers_round_trip(number: int) -> None:
    assert parse_integer(str(number)) == number


@pytest.mark.parametrize("value", ["-1", "1.5", "", "0x10", "1 2", "1234567890123456", "\uff11"])
def test_malformed_integers_are_ignored(value: str) -> None:
    assert parse_integer(value) is None


def test_filename_star_wins_and_is_decoded() -> None:
    value = "inline; filename=\"plain.wav\"; filename*=UTF-8''r%C3%A9sum%C3%A9.wav"
    assert disposition_filename(value) == "résumé.wav"
    assert disposition_filename('attachment; filename="a b.m4a"') == "a b.m4a"
    assert disposition_filename("inline") is None
    assert disposition_filename(None) is None


def test_representation_metadata_is_tus_metadata() -> None:
    metadata = representation_metadata("audio/mp4; codecs=mp4a", 'inline; filename="take.m4a"')
    assert metadata == {"filetype": b"audio/mp4", "filename": b"take.m4a"}
    assert representation_metadata("application/partial-upload", None) == {}


def test_control_characters_in_a_file_name_are_refused() -> None:
    with pytest.raises(TusError) as caught:
        representation_metadata(None, "inline; filename*=UTF-8''a%0Ab.wav")
    assert caught.value.status == 400


def test_max_size_is_the_tighter_of_the_flag_and_the_quota() -> None:
    limits = upload_limits(max_size=1000, quota_room=300, claimed=200, expires_at=None, now=0)
    assert limits.max_size == 500
    assert upload_limits(max_size=1000, quota_room=None, claimed=0, expires_at=None, now=0).max_size == 1000
    assert upload_limits(max_size=None, quota_room=None, claimed=0, expires_at=None, now=0).max_size is None


def test_max_age_shrinks_as_the_upload_ages() -> None:
    early = upload_limits(max_size=None, quota_room=None, claimed=0, expires_at=1000.0, now=100.0)
    late = upload_limits(max_size=None, quota_room=None, claimed=0, expires_at=1000.0, now=700.5)
    assert early.max_age == 900 and late.max_age == 299
    gone = upload_limits(max_size=None, quota_room=None, claimed=0, expires_at=1000.0, now=2000.0)
    assert gone.max_age == 0


def test_limits_are_written_per_version() -> None:
    limits = upload_limits(max_size=10, quota_room=None, claimed=0, expires_at=70.0, now=10.0)
    assert format_limits(limits, VERSIONS[3]) is None
    assert format_limits(limits, VERSIONS[6]) == "max-size=10, expires=60"
    assert format_limits(limits, VERSIONS[8]) == "max-size=10, max-age=60"
    assert parse_limits("max-size=10, max-age=60, future-key=?1") == {"max-size": 10, "max-age": 60}


def _creation(**overrides: object) -> object:
    values: dict[str, object] = {
        "complete": True,
        "complete_field": "Upload-Complete",
        "upload_offset": None,
        "offset_given": False,
        "upload_length": None,
        "content_length": 5,
        "max_size": 100,
    }
    values.update(overrides)
    return decide_creation(**values)  # type: ignore[arg-type]


def test_creation_length_comes_from_either_indicator() -> None:
    assert _creation().length == 5  # type: ignore[attr-defined]
    assert _creation(complete=False, upload_length=50).length == 50  # type: ignore[attr-defined]
    assert _creation(complete=False, content_length=None).length is None  # type: ignore[attr-defined]


def _problem_type(exc: TusError) -> object:
    assert exc.problem is not None
    return exc.problem["type"]


def test_creation_refusals() -> None:
    with pytest.raises(TusError) as caught:
        _creation(upload_length=6)
    assert caught.value.status == 400 and _problem_type(caught.value) == INCONSISTENT_LENGTH
    with pytest.raises(TusError) as caught:
        _creation(complete=None)
    assert caught.value.status == 400
    with pytest.raises(TusError) as caught:
        _creation(content_length=101)
    assert caught.value.status == 413
    with pytest.raises(TusError) as caught:
        _creation(offset_given=True, upload_offset=3)
    assert caught.value.status == 400


def _append(**overrides: object) -> object:
    values: dict[str, object] = {
        "stored_offset": 2,
        "stored_length": 5,
        "upload_complete": False,
        "client_offset": 2,
        "complete": True,
        "upload_length": None,
        "content_length": 3,
        "max_size": 100,
    }
    values.update(overrides)
    return decide_append(**values)  # type: ignore[arg-type]


def test_append_plans() -> None:
    assert _append().max_bytes == 3  # type: ignore[attr-defined]
    plan = _append(stored_length=None)
    assert plan.new_length == 5  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("overrides", "status", "type_uri"),
    [
        ({"client_offset": 4}, 409, MISMATCHING_OFFSET),
        ({"upload_complete": True, "content_length": 0}, 400, COMPLETED_UPLOAD),
        ({"upload_complete": True}, 400, INCONSISTENT_LENGTH),
        ({"content_length": 2}, 400, INCONSISTENT_LENGTH),
        ({"upload_length": 9}, 400, INCONSISTENT_LENGTH),
        ({"complete": False, "content_length": 4}, 400, INCONSISTENT_LENGTH),
        ({"client_offset": None}, 400, "about:blank"),
        ({"stored_length": None, "content_length": 200}, 413, "about:blank"),
    ],
)
def test_append_refusals(overrides: dict[str, object], status: int, type_uri: str) -> None:
    with pytest.raises(TusError) as caught:
        _append(**overrides)
    assert caught.value.status == status
    assert _problem_type(caught.value) == type_uri


def test_before_12_an_append_to_a_completed_upload_is_refused_before_its_offset_is_read() -> None:
    done = {"stored_offset": 5, "upload_complete": True, "client_offset": 5, "content_length": 0}
    with pytest.raises(TusError) as caught:
        _append(**done)
    assert _problem_type(caught.value) == COMPLETED_UPLOAD
    with pytest.raises(TusError) as caught:
        _append(**{**done, "client_offset": 3})
    assert caught.value.status == 400 and _problem_type(caught.value) == COMPLETED_UPLOAD


@pytest.mark.parametrize("content_length", [0, None])
def test_from_12_an_empty_append_at_a_completed_uploads_offset_replays_the_final_response(
    content_length: int | None,
) -> None:
    plan = _append(
        stored_offset=5, upload_complete=True, client_offset=5, content_length=content_length, replay_completed=True
    )
    assert plan.replay and plan.complete and plan.max_bytes == 0 and plan.new_length is None  # type: ignore[attr-defined]
    plan = _append(stored_offset=5, upload_complete=True, client_offset=5, complete=False, content_length=0,
                   upload_length=5, replay_completed=True)  # fmt: skip
    assert plan.replay  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("overrides", "status", "type_uri"),
    [
        ({"client_offset": 3, "content_length": 0}, 409, MISMATCHING_OFFSET),  # -12: 409 whatever the state
        ({"client_offset": 6, "content_length": 1}, 409, MISMATCHING_OFFSET),
        ({"content_length": 1}, 400, INCONSISTENT_LENGTH),  # content beyond the length
        ({"content_length": 0, "upload_length": 7}, 400, INCONSISTENT_LENGTH),
    ],
)
def test_from_12_other_appends_to_a_completed_upload(overrides: dict[str, object], status: int, type_uri: str) -> None:
    with pytest.raises(TusError) as caught:
        _append(**{"stored_offset": 5, "upload_complete": True, "client_offset": 5, "replay_completed": True,
                   **overrides})  # fmt: skip
    assert caught.value.status == status and _problem_type(caught.value) == type_uri


def test_from_12_a_completed_upload_whose_final_response_is_unknown_is_not_replayed() -> None:
    with pytest.raises(TusError) as caught:
        _append(stored_offset=5, upload_complete=True, client_offset=5, content_length=0, replay_completed=True,
                final_response_known=False)  # fmt: skip
    assert caught.value.status == 400 and _problem_type(caught.value) == "about:blank"


def test_replaying_changes_nothing_for_an_upload_still_open() -> None:
    assert not _append(replay_completed=True).replay  # type: ignore[attr-defined]
    assert _append(replay_completed=True).max_bytes == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize("processed_meaning", [False, True])
def test_a_mismatching_offset_never_says_complete(processed_meaning: bool) -> None:
    assert not error_says_complete(
        status=409, protocol_error=True, finished=True, complete_means_processed=processed_meaning
    )
    # A pre-finish hook refusing with 409 ("virus found") answers for the processed representation.
    assert error_says_complete(
        status=409, protocol_error=False, finished=True, complete_means_processed=processed_meaning
    )


def test_what_an_errors_completeness_field_says_before_and_from_12() -> None:
    # Up to -11: the upload's state, for a protocol error too (a refused append to a completed upload).
    assert error_says_complete(status=400, protocol_error=True, finished=True, complete_means_processed=False)
    # -12: only processing the completed representation says true (a pre-finish rejection, not a protocol error).
    assert not error_says_complete(status=400, protocol_error=True, finished=True, complete_means_processed=True)
    assert error_says_complete(status=400, protocol_error=False, finished=True, complete_means_processed=True)
    assert not error_says_complete(status=413, protocol_error=False, finished=False, complete_means_processed=True)


def test_mismatch_names_both_offsets() -> None:
    with pytest.raises(TusError) as caught:
        _append(client_offset=4)
    assert caught.value.headers == {"Upload-Offset": "2"}
    assert caught.value.problem is not None
    assert caught.value.problem["expected-offset"] == 2 and caught.value.problem["provided-offset"] == 4


def test_plain_errors_become_about_blank_problems() -> None:
    converted = as_problem(TusError(423, "locked"))
    assert converted.problem == {"type": "about:blank", "title": "Locked", "status": 423, "detail": "locked"}
