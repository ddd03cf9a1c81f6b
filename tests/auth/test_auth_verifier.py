"""Token verification against real keys: every way a token can be wrong is refused."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.auth.auth_support import Sign, jwk_of, public_pem, write_jwks, write_pem
from tests.tokens import SECRET, claims
from tusd_py.auth import AuthConfig, AuthError, Principal, TokenVerifier, mint_dev_token


def bearer(token: str) -> str:
    return f"Bearer {token}"


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify_authorization(bearer(token))
    assert info.value.status == 401
    assert info.value.www_authenticate.startswith('Bearer realm="tusd-py", error="invalid_token"')
    return info.value.reason


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_hs256_token(hs_config: AuthConfig, sign_hs: Sign) -> None:
    principal = TokenVerifier(hs_config).verify_authorization(bearer(sign_hs(claims(role="admin"))))
    assert principal == Principal(user_id="alice", claims=principal.claims)
    assert principal.claims["role"] == "admin"


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_sizes(sign_hs: Sign, alg: str) -> None:
    verifier = TokenVerifier(AuthConfig(enabled=True, algorithms=[alg], secret=SECRET))
    assert verifier.verify_authorization(bearer(sign_hs(alg=alg))).user_id == "alice"
    assert "algorithm" in refused(verifier, sign_hs(alg="HS256"))


def test_forged_signature(hs_config: AuthConfig) -> None:
    forged = jwt.encode(claims(), "another-secret-that-is-long-enough-32b", algorithm="HS256")
    assert refused(TokenVerifier(hs_config), forged) == "token signature is invalid"


def test_tampered_payload(hs_config: AuthConfig, sign_hs: Sign) -> None:
    header, _, signature = sign_hs().split(".")
    tampered = f"{header}.{b64(claims(sub='mallory'))}.{signature}"
    assert refused(TokenVerifier(hs_config), tampered) == "token signature is invalid"


def test_rs256_token_refused_when_only_hs256_allowed(hs_config: AuthConfig, rsa_key: Any) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert refused(TokenVerifier(hs_config), token) == "token algorithm is not allowed"


def test_hs256_token_refused_when_only_rs256_allowed(tmp_path: Path, rsa_key: Any, sign_hs: Sign) -> None:
    config = AuthConfig(enabled=True, algorithms=["RS256"], public_key_path=write_pem(tmp_path, rsa_key))
    assert refused(TokenVerifier(config), sign_hs()) == "token algorithm is not allowed"


def test_key_confusion_attack_hs256_signed_with_the_public_key(tmp_path: Path, rsa_key: Any) -> None:
    # The attacker knows the public key and signs HS256 with its PEM bytes as the "secret".
    # pyjwt refuses to encode that, so build the token by hand.
    pem = public_pem(rsa_key)
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(claims(sub='mallory'))}"
    mac = jwt.get_algorithm_by_name("HS256").sign(signing_input.encode(), pem)
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    config = AuthConfig(enabled=True, algorithms=["RS256"], public_key_path=write_pem(tmp_path, rsa_key))
    assert refused(TokenVerifier(config), token) == "token algorithm is not allowed"


def test_alg_none_is_refused(hs_config: AuthConfig) -> None:
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}"
    verifier = TokenVerifier(hs_config)
    with pytest.raises(AuthError, match="not a signed JWT"):  # empty signature: the parser stops it
        verifier.verify_authorization(bearer(unsigned + "."))
    assert refused(verifier, unsigned + ".c2ln") == "token algorithm is not allowed"
    pyjwt_none = jwt.encode(claims(), None, algorithm="none")  # type: ignore[arg-type]
    assert refused(verifier, pyjwt_none + "c2ln") == "token algorithm is not allowed"


def test_expired(hs_config: AuthConfig, sign_hs: Sign) -> None:
    now = int(time.time())
    assert refused(TokenVerifier(hs_config), sign_hs(claims(exp=now - 60))) == "token has expired"


def test_expired_within_leeway_is_accepted(hs_config: AuthConfig, sign_hs: Sign) -> None:
    now = int(time.time())
    assert TokenVerifier(hs_config).verify_authorization(bearer(sign_hs(claims(exp=now - 2))))


def test_not_yet_valid_nbf(hs_config: AuthConfig, sign_hs: Sign) -> None:
    now = int(time.time())
    assert refused(TokenVerifier(hs_config), sign_hs(claims(nbf=now + 120))) == "token is not valid yet"
    assert TokenVerifier(hs_config).verify_authorization(bearer(sign_hs(claims(nbf=now + 2))))


def test_iat_in_the_future_beyond_leeway(hs_config: AuthConfig, sign_hs: Sign) -> None:
    now = int(time.time())
    assert refused(TokenVerifier(hs_config), sign_hs(claims(iat=now + 120))) == "token is not valid yet"
    assert refused(TokenVerifier(hs_config), sign_hs(claims(iat="yesterday"))) == "token iat claim is invalid"


def test_missing_exp(hs_config: AuthConfig, sign_hs: Sign) -> None:
    assert refused(TokenVerifier(hs_config), sign_hs(claims(exp=None))) == "token has no 'exp' claim"


def test_audience_and_issuer(sign_hs: Sign) -> None:
    config = AuthConfig(enabled=True, algorithms=["HS256"], secret=SECRET, issuer="https://idp", audience="tusd")
    verifier = TokenVerifier(config)
    ok = claims(iss="https://idp", aud=["other", "tusd"])
    assert verifier.verify_authorization(bearer(sign_hs(ok))).user_id == "alice"
    assert refused(verifier, sign_hs({**ok, "aud": "other"})) == "token audience is not accepted"
    assert refused(verifier, sign_hs({**ok, "iss": "https://evil"})) == "token issuer is not accepted"
    assert refused(verifier, sign_hs(claims(aud="tusd"))) == "token has no 'iss' claim"
    assert refused(verifier, sign_hs(claims(iss="https://idp"))) == "token has no 'aud' claim"


def test_token_with_audience_refused_when_none_configured(hs_config: AuthConfig, sign_hs: Sign) -> None:
    # RFC 7519 §4.1.3: a recipient not identified in "aud" MUST reject the token.
    assert refused(TokenVerifier(hs_config), sign_hs(claims(aud="someone-else"))) == ("token audience is not accepted")


@pytest.mark.parametrize("value", [None, "", "   ", True, 1.5, ["alice"], {"id": 1}, "a\nb", "x" * 300])
def test_missing_or_unusable_user_claim(hs_config: AuthConfig, sign_hs: Sign, value: Any) -> None:
    payload = claims(sub=None)
    if value is not None:
        payload["sub"] = value
    assert "'sub' claim" in refused(TokenVerifier(hs_config), sign_hs(payload))


def test_integer_user_id_and_custom_claim(sign_hs: Sign) -> None:
    config = AuthConfig(enabled=True, algorithms=["HS256"], secret=SECRET, user_claim="uid")
    verifier = TokenVerifier(config)
    assert verifier.verify_authorization(bearer(sign_hs(claims(uid=42)))).user_id == "42"
    assert "'uid' claim" in refused(verifier, sign_hs(claims()))  # has sub, not uid


def test_garbage_that_looks_like_a_jwt(hs_config: AuthConfig) -> None:
    assert refused(TokenVerifier(hs_config), "abc.def.ghi") == "token cannot be decoded"
    no_alg = f"{b64({'typ': 'JWT'})}.{b64(claims())}.c2ln"
    assert refused(TokenVerifier(hs_config), no_alg) == "token algorithm is not allowed"


@pytest.mark.parametrize("kind", ["rsa_key", "ec_key", "ed_key"])
def test_pem_public_key_algorithms(tmp_path: Path, request: pytest.FixtureRequest, kind: str) -> None:
    private = request.getfixturevalue(kind)
    alg = {"rsa_key": "RS256", "ec_key": "ES256", "ed_key": "EdDSA"}[kind]
    verifier = TokenVerifier(AuthConfig(enabled=True, algorithms=[alg], public_key_path=write_pem(tmp_path, private)))
    assert verifier.verify_authorization(bearer(jwt.encode(claims(), private, algorithm=alg))).user_id == "alice"


def test_jwks_picks_the_key_by_kid(tmp_path: Path, rsa_key: Any, rsa_key2: Any, ed_key: Any) -> None:
    path = write_jwks(
        tmp_path,
        [jwk_of(rsa_key, "RS256", "old"), jwk_of(rsa_key2, "RS256", "new"), jwk_of(ed_key, "EdDSA", "ed")],
    )
    verifier = TokenVerifier(AuthConfig(enabled=True, algorithms=["RS256", "EdDSA"], jwks_path=path))

    def token(private: Any, kid: str | None, alg: str = "RS256") -> str:
        return jwt.encode(claims(), private, algorithm=alg, headers={"kid": kid} if kid else None)

    assert verifier.verify_authorization(bearer(token(rsa_key, "old"))).user_id == "alice"
    assert verifier.verify_authorization(bearer(token(rsa_key2, "new"))).user_id == "alice"
    assert verifier.verify_authorization(bearer(token(ed_key, "ed", "EdDSA"))).user_id == "alice"
    # Right key set, wrong key for this kid: the signature does not verify.
    assert refused(verifier, token(rsa_key, "new")) == "token signature is invalid"
    # A kid bound to RS256 cannot be used with another algorithm the list allows.
    assert refused(verifier, token(ed_key, "old", "EdDSA")) == "token algorithm is not allowed"
    assert refused(verifier, token(rsa_key, "unknown")) == "token key id (kid) is unknown"
    assert refused(verifier, token(rsa_key, None)) == "token key id (kid) is unknown"


def test_dev_token_round_trip() -> None:
    config = AuthConfig(enabled=True, algorithms=["HS512"], secret=SECRET, issuer="dev", audience="tusd")
    token = mint_dev_token(config, "dev-user", ttl=60)
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    principal = TokenVerifier(config).verify_authorization(bearer(token))
    assert principal.user_id == "dev-user"
    assert principal.claims["exp"] - principal.claims["iat"] == 60
    expired = mint_dev_token(config, "dev-user", ttl=60, clock=lambda: time.time() - 3600)
    assert refused(TokenVerifier(config), expired) == "token has expired"


def test_dev_token_needs_a_secret(tmp_path: Path, rsa_key: Any) -> None:
    config = AuthConfig(enabled=True, algorithms=["RS256"], public_key_path=write_pem(tmp_path, rsa_key))
    with pytest.raises(ValueError, match="shared secret"):
        mint_dev_token(config, "u", 60)
