import pytest
from hypothesis import given
from hypothesis import strategies as st

from tusd_py.model.errors import TusError
from tusd_py.protocol.headers import (
    check_patch_content_type,
    check_tus_resumable,
    parse_defer_length,
    parse_non_negative,
)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_every_representable_number_parses(number: int) -> None:
    assert parse_non_negative("Upload-Length", str(number)) == number


@pytest.mark.parametrize(
    "raw",
    [
        *["-1", "+1", "1.0", "1e3", "0x10", "ten", "", " ", "1 2", "١٢", "²", "9" * 20, str(2**63), "1_000"],
        # Past Python's int() limit of 4,300 digits, which would raise ValueError (a 500).
        *["9" * 5000, "1" * 4301, "0" * 5000 + "1", "-" + "9" * 5000],
    ],
)
def test_malformed_numbers_are_400(raw: str) -> None:
    with pytest.raises(TusError) as caught:
        parse_non_negative("Upload-Offset", raw)
    assert caught.value.status == 400
    assert "Upload-Offset" in caught.value.reason


def test_missing_required_number_is_400_and_optional_is_none() -> None:
    with pytest.raises(TusError) as caught:
        parse_non_negative("Upload-Offset", None)
    assert caught.value.status == 400 and "missing" in caught.value.reason
    assert parse_non_negative("Content-Length", None, required=False) is None


def test_surrounding_whitespace_is_tolerated() -> None:
    assert parse_non_negative("Upload-Length", " 42 ") == 42


def test_reasons_never_echo_huge_or_binary_input() -> None:
    with pytest.raises(TusError) as caught:
        parse_non_negative("Upload-Length", "\x00\xff" + "x" * 10_000)
    assert len(caught.value.reason) < 120
    assert "\x00" not in caught.value.reason


@pytest.mark.parametrize("value", [None, "0.2.2", "2.0.0", "", "1.0", "1.0.0,0.2.2"])
def test_tus_resumable_other_than_1_0_0_is_412_with_versions(value: str | None) -> None:
    with pytest.raises(TusError) as caught:
        check_tus_resumable(value)
    assert caught.value.status == 412
    assert caught.value.headers["Tus-Version"] == "1.0.0"


def test_tus_resumable_1_0_0_passes() -> None:
    check_tus_resumable("1.0.0")
    check_tus_resumable(" 1.0.0 ")


@pytest.mark.parametrize(
    "value",
    ["application/offset+octet-stream", "Application/Offset+Octet-Stream", "application/offset+octet-stream; x=1"],
)
def test_offset_octet_stream_accepted(value: str) -> None:
    check_patch_content_type(value)


@pytest.mark.parametrize("value", [None, "", "application/octet-stream", "text/plain", "application/offset"])
def test_other_content_types_are_415(value: str | None) -> None:
    with pytest.raises(TusError) as caught:
        check_patch_content_type(value)
    assert caught.value.status == 415


def test_defer_length_only_accepts_1() -> None:
    assert parse_defer_length(None) is False
    assert parse_defer_length("1") is True
    for bad in ("0", "2", "true", "", "01"):
        with pytest.raises(TusError):
            parse_defer_length(bad)
