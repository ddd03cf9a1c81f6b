"""The gate's token check in a small real aiohttp app, driven over 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.auth.auth_support import Sign
from tusd_py.auth import AuthConfig, TokenVerifier
from tusd_py.http.gate import CALLER, caller_id, gate_middleware
from tusd_py.http.middlewares import error_responses
from tusd_py.model.errors import TusError

Client = Any  # the aiohttp_client fixture's factory


async def whoami(request: web.Request) -> web.Response:
    caller = request.get(CALLER)
    principal = caller.principal if caller else None
    try:
        user: str | None = caller_id(request)
    except TusError as exc:
        user = str(exc.status)
    return web.Response(text=f"{principal.user_id if principal else '-'}|{user}")


def make_app(verifier: TokenVerifier | None) -> web.Application:
    app = web.Application(middlewares=[error_responses, gate_middleware(verifier)])
    app.router.add_route("*", "/files/", whoami, name="tus.files")
    app.router.add_get("/health", whoami, name="public.health")
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
    assert await resp.text() == "missing bearer token\n"


async def test_bad_token_gets_invalid_token(auth_client: TestClient[Any, Any], sign_hs: Sign) -> None:
    token = sign_hs()[:-4] + "AAAA"
    resp = await auth_client.patch("/files/", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == (
        'Bearer realm="tusd-py", error="invalid_token", error_description="token signature is invalid"'
    )
    assert resp.headers["Cache-Control"] == "no-store"
    assert await resp.text() == "token signature is invalid\n"


async def test_options_and_exempt_routes_pass_without_a_token(auth_client: TestClient[Any, Any]) -> None:
    # They run, but act for nobody: asking who the caller is fails closed with 401.
    resp = await auth_client.options("/files/")
    assert resp.status == 200
    assert await resp.text() == "-|401"
    resp = await auth_client.get("/health")
    assert resp.status == 200
    assert await resp.text() == "-|401"
    resp = await auth_client.options("/files/", headers={"X-HTTP-Method-Override": "GET"})
    assert resp.status == 400


async def test_disabled_auth_leaves_principal_none(aiohttp_client: Client) -> None:
    plain = await aiohttp_client(make_app(None))
    resp = await plain.post("/files/", headers={"Authorization": "Bearer garbage"})
    assert resp.status == 200
    assert await resp.text() == "-|None"
