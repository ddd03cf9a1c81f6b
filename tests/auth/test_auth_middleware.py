"""The middleware in a real aiohttp app, driven over 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.auth.auth_support import Sign
from tusd_py.auth import PRINCIPAL, AuthConfig, TokenVerifier, auth_middleware
from tusd_py.service import principal_id

Client = Any  # the aiohttp_client fixture's factory


async def whoami(request: web.Request) -> web.Response:
    principal = request.get(PRINCIPAL)
    return web.Response(text=f"{principal.user_id if principal else '-'}|{principal_id(request)}")


def make_app(verifier: TokenVerifier) -> web.Application:
    app = web.Application(middlewares=[auth_middleware(verifier, exempt=lambda r: r.path == "/health")])
    app.router.add_route("*", "/files/", whoami)
    app.router.add_get("/health", whoami)
    return app


@pytest.fixture
async def auth_client(aiohttp_client: Client, hs_config: AuthConfig) -> TestClient[Any, Any]:
    return await aiohttp_client(make_app(TokenVerifier(hs_config)))  # type: ignore[no-any-return]


async def test_valid_token_sets_the_principal(auth_client: TestClient[Any, Any], sign_hs: Sign) -> None:
    resp = await auth_client.post("/files/", headers={"Authorization": f"Bearer {sign_hs()}"})
    assert resp.status == 200
    assert await resp.text() == "alice|alice"


async def test_missing_header_gets_the_bare_challenge(auth_client: TestClient[Any, Any]) -> None:
    resp = await auth_client.post("/files/")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="tusd-py"'
    assert resp.content_type == "text/plain"
    assert await resp.text() == "missing bearer token"


async def test_bad_token_gets_invalid_token(auth_client: TestClient[Any, Any], sign_hs: Sign) -> None:
    token = sign_hs()[:-4] + "AAAA"
    resp = await auth_client.patch("/files/", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == (
        'Bearer realm="tusd-py", error="invalid_token", error_description="token signature is invalid"'
    )
    assert resp.headers["Cache-Control"] == "no-store"
    assert await resp.text() == "token signature is invalid"


async def test_options_and_exempt_routes_pass_without_a_token(auth_client: TestClient[Any, Any]) -> None:
    resp = await auth_client.options("/files/")
    assert resp.status == 200
    assert await resp.text() == "-|None"
    resp = await auth_client.get("/health")
    assert resp.status == 200


async def test_disabled_auth_leaves_principal_none(aiohttp_client: Client) -> None:
    plain = await aiohttp_client(make_app(TokenVerifier(AuthConfig(enabled=False))))
    resp = await plain.post("/files/", headers={"Authorization": "Bearer garbage"})
    assert resp.status == 200
    assert await resp.text() == "-|None"
