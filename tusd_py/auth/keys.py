"""Loading verification keys: a shared secret, one PEM public key, or a JWKS (a local file here;
a remote one is fetched by :mod:`tusd_py.auth.remote_jwks` and parsed by :func:`parse_jwks`).

Each key is bound to the one algorithm it may verify. pyjwt then refuses a token whose ``alg``
header names another algorithm, so an attacker cannot choose how the key is interpreted
(RFC 8725 §3.1, §3.10).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tusd_py.auth.config import HMAC_ALGORITHMS, AuthConfig, AuthConfigError

# Smaller RSA moduli are factorable in practice (NIST SP 800-131A disallows < 2048 bits).
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class KeyRing:
    """Verification keys, resolved from config once at start-up.

    ``by_kid`` holds JWKS keys (the token's ``kid`` header selects one); ``default`` holds the
    single secret or PEM key with the algorithms it may verify.
    """

    default: tuple[Any, tuple[str, ...]] | None
    by_kid: dict[str, jwt.PyJWK]

    def key_for(self, kid: object) -> tuple[Any, tuple[str, ...]] | None:
        if self.default is not None:
            return self.default
        if not isinstance(kid, str):
            return None
        jwk = self.by_kid.get(kid)
        return None if jwk is None else (jwk, (jwk.algorithm_name,))


def load_keys(config: AuthConfig) -> KeyRing:
    """Build the key ring; raise :class:`AuthConfigError` if a key is unusable."""
    if config.uses_hmac:
        assert config.secret is not None  # check_config ran first
        hmac_algs = tuple(alg for alg in config.algorithms if alg in HMAC_ALGORITHMS)
        return KeyRing(default=(config.secret.encode(), hmac_algs), by_kid={})
    if config.public_key_path is not None:
        return KeyRing(default=_load_pem(config.public_key_path, config.algorithms), by_kid={})
    if config.jwks_url is not None:
        return KeyRing(default=None, by_kid={})  # filled and refreshed by RemoteJwks
    assert config.jwks_path is not None
    return KeyRing(default=None, by_kid=_load_jwks(config.jwks_path, config.algorithms))


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise AuthConfigError(f"auth: cannot read {path}: {exc.strerror}") from None


def _algorithm_for(key: object) -> str | None:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    return None


def _check_strength(key: object, where: str) -> None:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise AuthConfigError(f"auth: {where}: RSA key of {key.key_size} bits is too small")


def _load_pem(path: str, algorithms: list[str]) -> tuple[Any, tuple[str, ...]]:
    data = _read(path)
    try:
        key = load_pem_public_key(data)
    except ValueError:
        raise AuthConfigError(f"auth: {path} is not a PEM public key") from None
    alg = _algorithm_for(key)
    if alg is None:
        raise AuthConfigError(f"auth: {path}: unsupported key type (use RSA, EC P-256 or Ed25519)")
    _check_strength(key, path)
    # One PEM key fits exactly one algorithm: an allow-list naming others is a misconfiguration.
    if algorithms != [alg]:
        raise AuthConfigError(f"auth: {path} holds a key for {alg}; set algorithms to [{alg!r}]")
    return key, (alg,)


def _load_jwks(path: str, algorithms: list[str]) -> dict[str, jwt.PyJWK]:
    return parse_jwks(_read(path), algorithms, path)


def parse_jwks(data: bytes, algorithms: list[str], path: str) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS document, by kid; raise :class:`AuthConfigError` if unusable."""
    try:
        document = json.loads(data)
    except ValueError:
        raise AuthConfigError(f"auth: {path} is not valid JSON") from None
    raw_keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(raw_keys, list):
        raise AuthConfigError(f"auth: {path} is not a JWKS (no 'keys' list)")
    keys: dict[str, jwt.PyJWK] = {}
    for index, raw in enumerate(raw_keys):
        where = f"{path} key #{index}"
        if not isinstance(raw, dict):
            raise AuthConfigError(f"auth: {where} is not an object")
        if raw.get("kty") == "oct" or "d" in raw:
            # A JWKS is published; a secret or private key in it is a leak, not a config.
            raise AuthConfigError(f"auth: {where} is a secret or private key; a JWKS must hold public keys")
        if raw.get("use", "sig") != "sig":
            continue  # encryption keys are not for verifying signatures
        kid = raw.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthConfigError(f"auth: {where} has no 'kid'")
        if kid in keys:
            raise AuthConfigError(f"auth: {path}: kid {kid!r} appears twice")
        try:
            jwk = jwt.PyJWK(raw)
        except jwt.PyJWTError as exc:
            raise AuthConfigError(f"auth: {where} ({kid!r}) is unusable: {exc}") from None
        if jwk.algorithm_name not in algorithms:
            continue  # e.g. an RS384 key in an IdP's set while we only allow RS256
        if _algorithm_for(jwk.key) != jwk.algorithm_name:
            raise AuthConfigError(f"auth: {where} ({kid!r}) does not match its alg {jwk.algorithm_name}")
        _check_strength(jwk.key, where)
        keys[kid] = jwk
    if not keys:
        raise AuthConfigError(f"auth: {path} has no signing key for {sorted(algorithms)}")
    return keys
