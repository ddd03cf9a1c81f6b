"""The error-code catalog: every status has a code, codes are distinct names, problem types follow them."""

from __future__ import annotations

from http import HTTPStatus

from tusd_py.model.error_codes import BY_STATUS, PROBLEM_TYPE_PREFIX, ErrorCode, default_code, problem_type
from tusd_py.model.errors import TusError


def test_every_error_status_gets_a_code_of_its_class() -> None:
    for status in [s.value for s in HTTPStatus if s.value >= 400] + [460]:
        code = default_code(status)
        assert code in ErrorCode
        if status not in BY_STATUS:
            assert code == (ErrorCode.BAD_REQUEST if status < 500 else ErrorCode.INTERNAL_ERROR)


def test_codes_are_distinct_kebab_case_names() -> None:
    values = [code.value for code in ErrorCode]
    assert len(values) == len(set(values))
    assert all(value == value.lower() and " " not in value and "_" not in value for value in values)


def test_an_error_without_a_code_takes_its_statuss_and_a_named_one_keeps_its_own() -> None:
    assert TusError(404, "gone").code == ErrorCode.NOT_FOUND
    assert TusError(404, "x", code=ErrorCode.RECORDING_NOT_FOUND).code == ErrorCode.RECORDING_NOT_FOUND
    assert problem_type(ErrorCode.QUOTA_EXCEEDED) == PROBLEM_TYPE_PREFIX + "quota-exceeded"
