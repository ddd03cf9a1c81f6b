import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tusd_py.model.errors import TusError
from tusd_py.protocol.metadata import HEADER_VALUES, format_metadata, parse_metadata, text_value

# Any key but the ones whose values become response headers (HEADER_VALUES: text only, tested below).
keys = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=","), min_size=1, max_size=20
).filter(lambda key: key not in HEADER_VALUES)
values = st.one_of(st.none(), st.binary(min_size=1, max_size=64))


@given(st.dictionaries(keys, values, max_size=8))
def test_format_then_parse_round_trips(metadata: dict[str, bytes | None]) -> None:
    assert parse_metadata(format_metadata(metadata)) == metadata


@given(st.dictionaries(keys, values, min_size=1, max_size=8))
def test_canonical_header_comes_back_exactly_as_sent(metadata: dict[str, bytes | None]) -> None:
    header = format_metadata(metadata)
    assert format_metadata(parse_metadata(header)) == header


def test_absent_or_empty_header_means_no_metadata() -> None:
    assert parse_metadata(None) == {}
    assert parse_metadata("") == {}
    assert parse_metadata("   ") == {}  # tuspy sends an empty Upload-Metadata header


def test_key_without_value_and_spaces_around_pairs() -> None:
    assert parse_metadata("flag, name bmFtZQ==") == {"flag": None, "name": b"name"}
    assert parse_metadata("flag ") == {"flag": None}


@pytest.mark.parametrize(
    "header,reason",
    [
        ("name !!!", "Base64"),
        ("name YQ", "Base64"),
        ("a YQ==,a Yg==", "twice"),
        ("a,a", "twice"),
        (",", "empty"),
        ("a YQ==,,b", "empty"),
        ("ké YQ==", "ASCII"),
        ("name YQ== extra", "space"),
    ],
)
def test_invalid_metadata_is_400_with_reason(header: str, reason: str) -> None:
    with pytest.raises(TusError) as caught:
        parse_metadata(header)
    assert caught.value.status == 400
    assert reason in caught.value.reason


def test_oversized_metadata_is_refused() -> None:
    with pytest.raises(TusError):
        parse_metadata("k " + base64.b64encode(b"x" * 100_000).decode())


def test_text_value_only_for_utf8() -> None:
    meta = {"filename": "réunion.wav".encode(), "bin": b"\xff\xfe", "empty": None}
    assert text_value(meta, "filename") == "réunion.wav"
    assert text_value(meta, "bin") is None
    assert text_value(meta, "empty") is None
    assert text_value(meta, "missing") is None


@pytest.mark.parametrize(
    "metadata,reason",
    [
        ({f"k{i}": None for i in range(33)}, "more than 32 keys"),
        ({"notes": b"x" * 2049}, "'notes' is longer than 2048 bytes"),
        ({"a": b"x" * 1600, "b": b"x" * 1600}, "longer than 4096 bytes"),
        ({"filename": "é".encode() * 128}, "filename is longer than 255 bytes"),
        ({"filetype": b"audio/" + b"x" * 250}, "filetype is longer than 255 bytes"),
        ({"filetype": b"audio/wav\r\nx: y"}, "filetype contains control characters"),
        ({"filename": b"a\x00.wav"}, "filename contains control characters"),
        ({"filename": b"a\nb.wav"}, "filename contains control characters"),
        ({"filename": "a\u0085b".encode()}, "filename contains control characters"),  # C1 NEL
        ({"filename": b"a\x7f"}, "filename contains control characters"),
        ({"filename": b"\xff\xfe.wav"}, "filename is not UTF-8"),
    ],
)
def test_metadata_beyond_the_limits_is_400_naming_the_limit(metadata: dict[str, bytes | None], reason: str) -> None:
    with pytest.raises(TusError) as caught:
        parse_metadata(format_metadata(metadata))
    assert caught.value.status == 400
    assert reason in caught.value.reason


def test_metadata_at_the_limits_is_accepted() -> None:
    at_limits: dict[str, bytes | None] = {
        "filename": "会".encode() * 85,  # 255 bytes
        "filetype": b"audio/wav",
        "notes": b"x" * 2048,
        **{f"k{i}": None for i in range(29)},
    }
    assert len(at_limits) == 32
    assert parse_metadata(format_metadata(at_limits)) == at_limits
    # Binary values are fine where they never become a header.
    assert parse_metadata(format_metadata({"blob": b"\x00\xff\r\n"})) == {"blob": b"\x00\xff\r\n"}
