from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tusd_py.auth import AuthError, parse_bearer

# RFC 6750 §3 grammar for our challenges: the description is a quoted-string without '"' or '\\'.
CHALLENGE = re.compile(
    r'Bearer realm="tusd-py"(, error="invalid_token"(, error_description="[\x20\x21\x23-\x5b\x5d-\x7e]*")?)?'
)
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_scheme_is_case_insensitive(scheme: str) -> None:
    assert parse_bearer(f"{scheme} {TOKEN}") == TOKEN


@pytest.mark.parametrize("value", [None, ""])
def test_missing_header_has_no_error_code(value: str | None) -> None:
    with pytest.raises(AuthError) as info:
        parse_bearer(value)
    assert info.value.www_authenticate == 'Bearer realm="tusd-py"'
    assert info.value.status == 401


@pytest.mark.parametrize("value", ["Basic YWxpY2U6cw==", TOKEN, "Token " + TOKEN, "Bearer:" + TOKEN])
def test_other_schemes_get_the_bare_challenge(value: str) -> None:
    with pytest.raises(AuthError) as info:
        parse_bearer(value)
    assert info.value.www_authenticate == 'Bearer realm="tusd-py"'
    assert "Bearer" in info.value.reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("Bearer", "missing"),
        ("Bearer ", "missing"),
        ("Bearer  " + TOKEN, "malformed"),
        ("Bearer " + TOKEN + " ", "malformed"),
        ("Bearer " + TOKEN + " extra", "malformed"),
        ("Bearer not-a-jwt", "not a signed JWT"),
        ("Bearer a.b", "not a signed JWT"),
        ("Bearer a.b.", "not a signed JWT"),  # alg=none tokens have an empty signature
        ("Bearer a+b.c/d.e=f", "not a signed JWT"),  # standard base64, not base64url
        ("Bearer a.b.c\t", "malformed"),
        ("Bearer a.b.c\u00e9", "not a signed JWT"),
        ("Bearer " + "A" * 10_240, "too long"),
    ],
)
def test_malformed_bearer_is_invalid_token(value: str, reason: str) -> None:
    with pytest.raises(AuthError) as info:
        parse_bearer(value)
    assert reason in info.value.reason
    assert info.value.www_authenticate.startswith('Bearer realm="tusd-py", error="invalid_token"')


@given(st.text(max_size=300))
def test_arbitrary_input_returns_a_token_or_raises_auth_error(value: str) -> None:
    try:
        token = parse_bearer(value)
    except AuthError as exc:
        assert CHALLENGE.fullmatch(exc.www_authenticate)
    else:
        assert value[:7].lower() == "bearer " and value[7:] == token
        assert token.count(".") == 2


def test_description_cannot_break_out_of_the_quoted_string() -> None:
    err = AuthError('bad "quote" and \\ backslash\r\nInjected: 1')
    assert err.www_authenticate == (
        'Bearer realm="tusd-py", error="invalid_token", error_description="bad ?quote? and ? backslash??Injected: 1"'
    )
