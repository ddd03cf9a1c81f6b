"""The signed-link rule on its own: valid until expiry, any change to id, expiry or signature is a 403."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from tusd_py.model.errors import TusError
from tusd_py.protocol.signed_download import check_link, signature, signed_query

KEY = b"k" * 32


def parts(query: str) -> tuple[str, str]:
    fields = parse_qs(query)
    return fields["expires"][0], fields["signature"][0]


def test_a_link_is_valid_until_it_expires() -> None:
    expires, sig = parts(signed_query(KEY, "abc", 1000))
    check_link(KEY, "abc", expires, sig, now=999.9)
    with pytest.raises(TusError) as caught:
        check_link(KEY, "abc", expires, sig, now=1000)
    assert caught.value.status == 403 and "expired" in caught.value.reason


@pytest.mark.parametrize(
    ("upload_id", "expires", "sig", "key"),
    [
        ("abd", "1000", None, KEY),  # another upload
        ("abc", "1001", None, KEY),  # a later expiry
        ("abc", "1000", "x" + signature(KEY, "abc", 1000)[1:], KEY),  # a changed signature
        ("abc", "1000", None, b"other-key" * 4),  # another server's key
        ("abc", "-5", None, KEY),
        ("abc", "1e3", None, KEY),
        ("abc", "9" * 40, None, KEY),
        ("abc", "1000", "ünicode", KEY),
    ],
)
def test_any_alteration_is_refused(upload_id: str, expires: str, sig: str | None, key: bytes) -> None:
    issued = signature(KEY, "abc", 1000)
    with pytest.raises(TusError) as caught:
        check_link(key, upload_id, expires, sig or issued, now=0)
    assert caught.value.status == 403 and caught.value.reason == "download link is invalid"


def test_an_unsigned_link_is_refused() -> None:
    for expires, sig in ((None, "s"), ("1000", None), (None, None)):
        with pytest.raises(TusError) as caught:
            check_link(KEY, "abc", expires, sig, now=0)
        assert caught.value.status == 403 and "not signed" in caught.value.reason
