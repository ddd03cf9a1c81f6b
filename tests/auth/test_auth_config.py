from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.auth.auth_support import jwk_of, write_jwks, write_pem
from tests.tokens import SECRET
from tusd_py.auth import AuthConfig, AuthConfigError, TokenVerifier


def test_disabled_config_needs_nothing() -> None:
    verifier = TokenVerifier(AuthConfig())
    assert not verifier.enabled
    with pytest.raises(RuntimeError):
        verifier.verify_authorization("Bearer a.b.c")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"algorithms": []}, "at least one"),
        ({"algorithms": ["none"]}, "'none'"),
        ({"algorithms": ["NONE"]}, "'none'"),
        ({"algorithms": ["HS256", "none"]}, "'none'"),
        ({"algorithms": ["PS256"]}, "unsupported"),
        ({"algorithms": ["HS256", "RS256"]}, "together"),
        ({"algorithms": ["HS256"], "secret": None}, "shared secret"),
        ({"algorithms": ["HS256"], "secret": "short"}, "at least 32 bytes"),
        ({"algorithms": ["HS512"], "secret": "x" * 40}, "at least 64 bytes"),
        ({"algorithms": ["HS256"], "public_key_path": "/k.pem"}, "public key"),
        ({"algorithms": ["HS256"], "jwks_path": "/jwks.json"}, "public key"),
        ({"algorithms": ["RS256"], "secret": SECRET}, "only used with HS"),
        ({"algorithms": ["RS256"], "secret": None}, "public_key_path, jwks_path or jwks_url"),
        ({"algorithms": ["RS256"], "secret": None, "public_key_path": "/a", "jwks_path": "/b"}, "not several"),
        ({"algorithms": ["RS256"], "secret": None, "jwks_path": "/a", "jwks_url": "https://x/j"}, "not several"),
        ({"user_claim": ""}, "user_claim"),
        ({"leeway_seconds": -1}, "leeway"),
        ({"leeway_seconds": 3600}, "leeway"),
    ],
)
def test_unsafe_configs_are_refused(overrides: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"enabled": True, "algorithms": ["HS256"], "secret": SECRET}
    base.update(overrides)
    with pytest.raises(AuthConfigError, match=message):
        TokenVerifier(AuthConfig(**base))


def test_pem_key_must_match_the_single_allowed_algorithm(tmp_path: Path, rsa_key: Any) -> None:
    path = write_pem(tmp_path, rsa_key)
    with pytest.raises(AuthConfigError, match=r"set algorithms to \['RS256'\]"):
        TokenVerifier(AuthConfig(enabled=True, algorithms=["ES256"], public_key_path=path))
    with pytest.raises(AuthConfigError, match="RS256"):
        TokenVerifier(AuthConfig(enabled=True, algorithms=["RS256", "ES256"], public_key_path=path))
    assert TokenVerifier(AuthConfig(enabled=True, algorithms=["RS256"], public_key_path=path)).enabled


def test_unreadable_or_private_or_weak_keys_are_refused(tmp_path: Path) -> None:
    cfg: dict[str, Any] = {"enabled": True, "algorithms": ["RS256"]}
    with pytest.raises(AuthConfigError, match="cannot read"):
        TokenVerifier(AuthConfig(**cfg, public_key_path=str(tmp_path / "missing.pem")))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(AuthConfigError, match="not a PEM public key"):
        TokenVerifier(AuthConfig(**cfg, public_key_path=str(garbage)))
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(AuthConfigError, match="too small"):
        TokenVerifier(AuthConfig(**cfg, public_key_path=write_pem(tmp_path, weak)))
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(AuthConfigError, match="unsupported key type"):
        TokenVerifier(AuthConfig(**cfg, public_key_path=write_pem(tmp_path, p384)))


def test_jwks_problems_are_refused(tmp_path: Path, rsa_key: Any, ec_key: Any) -> None:
    cfg: dict[str, Any] = {"enabled": True, "algorithms": ["RS256"]}
    good = jwk_of(rsa_key, "RS256", "a")
    no_kid = {k: v for k, v in good.items() if k != "kid"}
    cases: list[tuple[Any, str]] = [
        ([good, dict(good)], "appears twice"),
        ([no_kid], "no 'kid'"),
        ([{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}], "secret or private"),
        ([{**good, "d": "AAAA"}], "secret or private"),
        ([jwk_of(ec_key, "ES256", "e")], "no signing key"),  # only keys for other algorithms
        ([], "no signing key"),
    ]
    for keys, message in cases:
        with pytest.raises(AuthConfigError, match=message):
            TokenVerifier(AuthConfig(**cfg, jwks_path=write_jwks(tmp_path, keys)))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    with pytest.raises(AuthConfigError, match="not valid JSON"):
        TokenVerifier(AuthConfig(**cfg, jwks_path=str(bad_json)))
    bad_json.write_text('{"nokeys": 1}')
    with pytest.raises(AuthConfigError, match="not a JWKS"):
        TokenVerifier(AuthConfig(**cfg, jwks_path=str(bad_json)))


def test_repr_hides_the_secret() -> None:
    text = repr(AuthConfig(enabled=True, secret=SECRET))
    assert SECRET not in text
    assert "secret='***'" in text
