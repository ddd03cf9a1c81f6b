"""Real keys and token helpers for auth tests, generated with cryptography (RSA 2048, EC P-256, Ed25519)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.tokens import SECRET, claims
from tusd_py.auth import AuthConfig


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def public_pem(private: Any) -> bytes:
    return bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def write_pem(tmp_path: Path, private: Any, name: str = "key.pem") -> str:
    path = tmp_path / name
    path.write_bytes(public_pem(private))
    return str(path)


def jwk_of(private: Any, alg: str, kid: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    data: dict[str, Any] = json.loads(algorithm.to_jwk(private.public_key()))
    data.update({"kid": kid, "alg": alg, "use": "sig"})
    return data


def write_jwks(tmp_path: Path, keys: list[dict[str, Any]]) -> str:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return str(path)


@pytest.fixture
def hs_config() -> AuthConfig:
    return AuthConfig(enabled=True, algorithms=["HS256"], secret=SECRET, leeway_seconds=5)


Sign = Callable[..., str]


@pytest.fixture
def sign_hs() -> Sign:
    def sign(payload: dict[str, Any] | None = None, alg: str = "HS256", **headers: Any) -> str:
        return jwt.encode(payload or claims(), SECRET, algorithm=alg, headers=headers or None)

    return sign
