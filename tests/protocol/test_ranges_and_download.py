from unittest.mock import ANY
from urllib.parse import unquote

import pytest

from tusd_py.model.errors import TusError
from tusd_py.protocol.download import content_disposition, download_headers, safe_content_type
from tusd_py.protocol.ranges import ByteRange, parse_range


@pytest.mark.parametrize(
    "header,expected",
    [
        ("bytes=0-9", ByteRange(0, 10)),
        ("bytes=5-", ByteRange(5, 100)),
        ("bytes=-10", ByteRange(90, 100)),
        ("bytes=-1000", ByteRange(0, 100)),
        ("bytes=90-1000", ByteRange(90, 100)),
        ("bytes=0-0", ByteRange(0, 1)),
        (None, None),
        ("items=0-5", None),
        ("bytes=0-5,10-20", None),
        ("bytes=-", None),
        ("bytes=\u0661-\u0662", None),  # Arabic-Indic digits: RFC 9110 DIGIT is ASCII
        # Thousands of digits (past Python's int() limit) mean "beyond the end", never a 500.
        ("bytes=0-" + "9" * 5000, ByteRange(0, 100)),
        ("bytes=-" + "9" * 5000, ByteRange(0, 100)),
        ("bytes=" + "0" * 5000 + "5-" + "0" * 5000 + "9", ByteRange(5, 10)),
        ("bytes=10-" + "9" * 20, ByteRange(10, 100)),
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    "header",
    ["bytes=100-", "bytes=200-300", "bytes=-0", "bytes=50-10", "bytes=" + "9" * 5000 + "-", "bytes=-" + "0" * 5000],
)
def test_unsatisfiable_ranges_are_416_with_content_range(header: str) -> None:
    with pytest.raises(TusError) as caught:
        parse_range(header, 100)
    assert caught.value.status == 416
    assert caught.value.headers["Content-Range"] == "bytes */100"


def test_content_range_header() -> None:
    assert ByteRange(10, 20).content_range(100) == "bytes 10-19/100"


@pytest.mark.parametrize(
    "filetype,expected",
    [
        ("audio/mp4", ("audio/mp4", True)),
        ("Audio/WAV", ("audio/wav", True)),
        ("audio/ogg; codecs=opus", ("audio/ogg", True)),
        ("text/html", ("application/octet-stream", False)),
        ("image/svg+xml", ("application/octet-stream", False)),
        ("application/javascript", ("application/octet-stream", False)),
        ("audio/x\r\nSet-Cookie: a=b", ("application/octet-stream", False)),
        (None, ("application/octet-stream", False)),
        ("", ("application/octet-stream", False)),
    ],
)
def test_only_safe_content_types_are_served(filetype: str | None, expected: tuple[str, bool]) -> None:
    assert safe_content_type(filetype) == expected


def test_content_disposition_keeps_unicode_and_strips_paths() -> None:
    value = content_disposition("../../etc/réunion 会議 🎤.m4a", True)
    assert value.startswith('inline; filename="r_union ')
    assert "filename*=UTF-8''r%C3%A9union%20%E4%BC%9A%E8%AD%B0%20%F0%9F%8E%A4.m4a" in value
    assert "/" not in value.split("filename*=")[0]


def test_content_disposition_never_breaks_the_header() -> None:
    value = content_disposition('a"b\r\nX-Evil: 1.wav', False)
    assert "\r" not in value and "\n" not in value
    assert value.startswith('attachment; filename="a_bX-Evil: 1.wav"')
    assert content_disposition(None, False) == "attachment"


@pytest.mark.parametrize(
    "name,shown",
    [
        ("x" * 5000 + ".wav", "x" * 251 + ".wav"),
        ("🎤" * 5000 + ".m4a", "🎤" * 62 + ".m4a"),  # never half a character
        ("a." + "b" * 5000, "a." + "b" * 253),  # not an extension: cut like any name
        ("🎤" * 64, "🎤" * 63),
        ("🎤" * 63 + "abc", "🎤" * 63 + "abc"),  # exactly 255 bytes: untouched
    ],
)
def test_content_disposition_stays_short_whatever_the_name(name: str, shown: str) -> None:
    # Metadata stored before creation bounded file names may hold anything; the header must stay
    # far below the 8 KiB line limit of HTTP peers.
    value = content_disposition(name, False)
    assert unquote(value.split("filename*=UTF-8''", 1)[1]) == shown
    assert len(value) < 1100


def test_download_headers_never_carry_raw_metadata() -> None:
    headers = download_headers({"filetype": b"audio/wav\r\nx: y", "filename": b"a\r\nb.wav"})
    assert headers == {"Content-Type": "application/octet-stream", "Content-Disposition": ANY}
    assert not any(ch in value for value in headers.values() for ch in "\r\n\x00")
    assert download_headers({"filetype": b"audio/ogg; codecs=opus"})["Content-Type"] == "audio/ogg"
    assert download_headers({}) == {"Content-Type": "application/octet-stream", "Content-Disposition": "attachment"}
