"""Query parameter rules of the Recordings API, as pure functions."""

from __future__ import annotations

import pytest

from tusd_py.model.errors import TusError
from tusd_py.pipeline.states import Status
from tusd_py.recordings.params import check_known, parse_cursor, parse_days, parse_limit, parse_statuses


def test_statuses() -> None:
    assert parse_statuses([]) is None
    assert parse_statuses(["failed"]) == [Status.FAILED]
    assert parse_statuses(["failed,processing", "failed"]) == [Status.FAILED, Status.PROCESSING]
    for bad in (["nope"], [""], ["failed,"], ["Failed"]):
        with pytest.raises(TusError) as caught:
            parse_statuses(bad)
        assert caught.value.status == 400 and "one of: recorded, uploading" in caught.value.reason


def test_limit() -> None:
    assert parse_limit(None) == 50 and parse_limit(None, 100) == 100
    assert parse_limit("1") == 1 and parse_limit("200") == 200 and parse_limit("007") == 7
    for bad in ("0", "201", "-1", "+5", " 5", "5 ", "1.0", "", "٣", "1" * 10):
        with pytest.raises(TusError):
            parse_limit(bad)


def test_cursor() -> None:
    assert parse_cursor(None) is None and parse_cursor("abc") == "abc"
    with pytest.raises(TusError):
        parse_cursor("")


def test_days() -> None:
    assert parse_days(None, 7) == 7 and parse_days("0", 7) == 0 and parse_days("0.5", 7) == 0.5
    for bad in ("-1", "-0.1", "nan", "inf", "-inf", "1e400", "36501", "x", ""):
        with pytest.raises(TusError):
            parse_days(bad, 7)
    with pytest.raises(TusError, match="required"):
        parse_days(None, 0)


def test_only_known_query_parameters() -> None:
    check_known(["limit", "cursor"], {"limit", "cursor", "status"})
    check_known([], set())
    with pytest.raises(TusError, match=r"unknown query parameter 'stauts'; this operation takes: limit, status"):
        check_known(["limit", "stauts"], {"limit", "status"})
    with pytest.raises(TusError, match="takes: none"):
        check_known(["x"], set())
