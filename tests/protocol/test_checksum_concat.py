import base64
import hashlib
import zlib

import crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tusd_py.model.errors import TusError
from tusd_py.protocol.checksum import ALGORITHMS, parse_upload_checksum
from tusd_py.protocol.concat import parse_upload_concat


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


REFERENCE = {
    "md5": lambda d: hashlib.md5(d).digest(),
    "sha1": lambda d: hashlib.sha1(d).digest(),
    "sha256": lambda d: hashlib.sha256(d).digest(),
    "sha512": lambda d: hashlib.sha512(d).digest(),
    "crc32": lambda d: zlib.crc32(d).to_bytes(4, "big"),
    "crc32c": lambda d: crc32c.crc32c(d).to_bytes(4, "big"),
}


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
@given(pieces=st.lists(st.binary(max_size=300), max_size=6))
def test_streaming_hash_matches_one_shot_reference(algorithm: str, pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    expected = parse_upload_checksum(f"{algorithm} {b64(REFERENCE[algorithm](data))}")
    assert expected is not None
    hasher = expected.new_hasher()
    for piece in pieces:
        hasher.update(piece)
    assert hasher.digest() == expected.digest


def test_crc32c_known_vector() -> None:
    assert REFERENCE["crc32c"](b"123456789").hex() == "e3069283"


@pytest.mark.parametrize(
    "header,reason",
    [
        ("sha256", "must be"),
        ("sha256 ", "must be"),
        ("whirlpool AAAA", "not supported"),
        ("sha256 !!!!", "Base64"),
        ("sha256 AAA", "Base64"),
        ("sha256 " + b64(b"x" * 31), "32 bytes"),
        ("md5 " + b64(b"x" * 32), "16 bytes"),
        ("crc32 " + b64(b"x" * 8), "4 bytes"),
    ],
)
def test_bad_upload_checksum_is_400(header: str, reason: str) -> None:
    with pytest.raises(TusError) as caught:
        parse_upload_checksum(header)
    assert caught.value.status == 400 and reason in caught.value.reason


def test_algorithm_name_is_case_insensitive_and_absent_header_is_none() -> None:
    assert parse_upload_checksum("SHA1 " + b64(b"x" * 20)) is not None
    assert parse_upload_checksum(None) is None


def test_concat_partial_and_final() -> None:
    assert parse_upload_concat(None, "/files/") is None
    assert parse_upload_concat("partial", "/files/").role == "partial"  # type: ignore[union-attr]
    final = parse_upload_concat("final;/files/a http://h:1/files/b", "/files/")
    assert final is not None and final.partial_ids == ("a", "b")


@pytest.mark.parametrize(
    "header,reason",
    [
        ("final;", "no partial"),
        ("final", "must be"),
        ("whole", "must be"),
        ("final;/files/a /files/a", "more than once"),
        ("final;/other/a", "not an upload of this server"),
        ("final;/files/../etc", "does not name"),
        ("final;/files/a/b", "does not name"),
        ("final;" + " ".join(f"/files/p{i}" for i in range(1001)), "more than"),
    ],
)
def test_bad_concat_headers_are_400(header: str, reason: str) -> None:
    with pytest.raises(TusError) as caught:
        parse_upload_concat(header, "/files/")
    assert caught.value.status == 400 and reason in caught.value.reason
