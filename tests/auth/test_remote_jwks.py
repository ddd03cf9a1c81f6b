"""--jwks-url against a real HTTPS issuer on 127.0.0.1 that rotates keys and goes down."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.auth.auth_support import jwk_of
from tests.auth.jwks_server import JwksIssuer
from tests.client.tus import TUS
from tests.tokens import claims
from tusd_py.auth import AuthConfig, AuthConfigError, TokenVerifier
from tusd_py.auth.cache_policy import MAX_SECONDS, MIN_SECONDS, fresh_for
from tusd_py.config.values import Config
from tusd_py.server.app import make_app


def token(key: rsa.RSAPrivateKey, kid: str, user: str = "alice") -> dict[str, str]:
    return {"Authorization": "Bearer " + jwt.encode(claims(sub=user), key, algorithm="RS256", headers={"kid": kid})}


@pytest.fixture
async def issuer(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[JwksIssuer]:
    server = JwksIssuer(tmp_path, [jwk_of(rsa_key, "RS256", "k1")])
    await server.start()
    yield server
    await server.stop()


def app_config(tmp_path: Path, issuer: JwksIssuer, **kw: Any) -> Config:
    return Config(storage_dir=str(tmp_path / "data"), jwks_url=issuer.url, jwks_ca_file=str(issuer.ca_file), **kw)


async def create(client: TestClient, headers: dict[str, str]) -> int:
    resp = await client.post("/files/", headers={**TUS, **headers, "Upload-Length": "1"})
    return resp.status


async def test_keys_are_fetched_at_start_and_a_rotation_is_picked_up_without_restart(
    aiohttp_client, tmp_path: Path, issuer: JwksIssuer, rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey
) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(make_app(app_config(tmp_path, issuer, jwks_min_refresh=0)))
    assert issuer.fetches == 1  # at start, before any request
    assert await create(client, token(rsa_key, "k1")) == 201
    assert issuer.fetches == 1  # cached (max-age=3600)
    issuer.keys = [jwk_of(rsa_key2, "RS256", "k2")]  # the provider rotates: k1 retired, k2 signs
    assert await create(client, token(rsa_key2, "k2")) == 201  # unknown kid: fetched again
    assert issuer.fetches == 2
    resp = await client.post("/files/", headers={**TUS, **token(rsa_key, "k1"), "Upload-Length": "1"})
    assert resp.status == 401 and "kid" in await resp.text()  # the retired key no longer opens anything


async def test_a_flood_of_made_up_kids_costs_the_issuer_one_fetch(
    aiohttp_client, tmp_path: Path, issuer: JwksIssuer, rsa_key: rsa.RSAPrivateKey
) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(make_app(app_config(tmp_path, issuer, jwks_min_refresh=300)))
    statuses = [await create(client, token(rsa_key, secrets.token_hex(8))) for _ in range(50)]
    assert statuses == [401] * 50
    assert issuer.fetches <= 2  # the start, and at most one refresh within --jwks-min-refresh
    assert await create(client, token(rsa_key, "k1")) == 201  # real tokens keep working


async def test_issuer_down_fails_closed_for_unknown_keys_and_keeps_cached_ones(
    aiohttp_client,
    tmp_path: Path,
    issuer: JwksIssuer,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key2: rsa.RSAPrivateKey,
    capsys: pytest.CaptureFixture[str],
) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(make_app(app_config(tmp_path, issuer, jwks_min_refresh=0)))
    await issuer.stop()
    resp = await client.post("/files/", headers={**TUS, **token(rsa_key2, "k2"), "Upload-Length": "1"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="tusd-py", error="invalid_token"')
    assert "JWKS fetch failed" in capsys.readouterr().out
    assert await create(client, token(rsa_key, "k1")) == 201  # a key fetched before still verifies


async def test_an_unreachable_issuer_at_start_is_logged_and_every_token_refused(
    aiohttp_client, tmp_path: Path, rsa_key: rsa.RSAPrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    issuer = JwksIssuer(tmp_path, [jwk_of(rsa_key, "RS256", "k1")])
    await issuer.start()
    await issuer.stop()  # its port is now closed
    client = await aiohttp_client(make_app(app_config(tmp_path, issuer)))
    resp = await client.post("/files/", headers={**TUS, **token(rsa_key, "k1"), "Upload-Length": "1"})
    assert resp.status == 401 and "cannot be fetched" in await resp.text()
    assert "JWKS fetch failed" in capsys.readouterr().out


async def test_the_issuer_certificate_must_be_trusted(
    aiohttp_client, tmp_path: Path, issuer: JwksIssuer, rsa_key: rsa.RSAPrivateKey
) -> None:  # type: ignore[no-untyped-def]
    cfg = Config(storage_dir=str(tmp_path / "data"), jwks_url=issuer.url)  # the system CAs do not know it
    client = await aiohttp_client(make_app(cfg))
    assert await create(client, token(rsa_key, "k1")) == 401
    assert issuer.fetches == 0  # the TLS handshake failed before any request


def test_jwks_url_is_https_only() -> None:
    with pytest.raises(AuthConfigError, match="https"):
        TokenVerifier(AuthConfig(enabled=True, algorithms=["RS256"], jwks_url="http://127.0.0.1:1/jwks"))
    with pytest.raises(ValueError, match="https"):
        Config(jwks_url="http://idp.example/jwks")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 600.0),
        ("max-age=3600", 3600.0),
        ("public, max-age=120, must-revalidate", 120.0),
        ('max-age="300"', 300.0),
        ("max-age=0", MIN_SECONDS),  # no hammering
        ("no-store", MIN_SECONDS),
        ("max-age=31536000", MAX_SECONDS),  # a revoked key leaves within a day
        ("s-maxage=100, max-age=900", 100.0),
        ("private", 600.0),
    ],
)
def test_cache_control_sets_freshness_within_bounds(header: str | None, seconds: float) -> None:
    assert fresh_for(header) == seconds
