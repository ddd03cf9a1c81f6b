"""Auth on the real app: every route needs a token, and one user's uploads are invisible to another."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.client.tus import OCTET, TUS, create
from tests.tokens import bearer, token
from tusd_py.config.values import Config
from tusd_py.server.app import make_app


@pytest.fixture
async def client(aiohttp_client, auth_config: Config) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(make_app(auth_config))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "authorization,error",
    [
        (None, None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", "invalid_token"),
        ("Bearer not.a.jwt", "invalid_token"),
        (f"Bearer {token('alice', secret='y' * 64)}", "invalid_token"),  # forged: wrong key
        (f"Bearer {token('alice', ttl=-120)}", "invalid_token"),  # expired
    ],
)
async def test_requests_without_a_valid_token_are_401(
    client: TestClient, authorization: str | None, error: str | None
) -> None:
    headers = {**TUS, "Upload-Length": "1"}
    if authorization is not None:
        headers["Authorization"] = authorization
    resp = await client.post("/files/", headers=headers)
    assert resp.status == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer realm=")
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    assert (await resp.text()).strip()


async def test_alg_none_token_is_refused(client: TestClient) -> None:
    unsigned = token("alice").rsplit(".", 1)[0]
    import base64
    import json

    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    forged = header + "." + unsigned.split(".")[1] + "."
    resp = await client.post("/files/", headers={**TUS, "Upload-Length": "1", "Authorization": f"Bearer {forged}"})
    assert resp.status == 401


async def test_preflight_and_health_need_no_token(client: TestClient) -> None:
    pre = await client.options(
        "/files/", headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"}
    )
    assert pre.status == 204
    assert (await client.options("/files/")).status == 204
    assert (await client.get("/healthz")).status == 200


async def test_owner_can_do_everything(client: TestClient) -> None:
    path = await create(client, 3, **bearer("alice"))
    me = {**TUS, **bearer("alice")}
    assert (await client.head(path, headers=me)).status == 200
    assert (await client.patch(path, headers={**me, **OCTET, "Upload-Offset": "0"}, data=b"abc")).status == 204
    assert await (await client.get(path, headers=me)).read() == b"abc"
    assert (await client.delete(path, headers=me)).status == 204


async def test_another_user_sees_404_on_every_method(client: TestClient) -> None:
    path = await create(client, 3, **bearer("alice"))
    done = await create(client, 3, **bearer("alice"), Upload_Concat="partial")
    alice = {**TUS, **bearer("alice")}
    await client.patch(done, headers={**alice, **OCTET, "Upload-Offset": "0"}, data=b"abc")
    bob = {**TUS, **bearer("bob")}
    responses = [
        await client.head(path, headers=bob),
        await client.patch(path, headers={**bob, **OCTET, "Upload-Offset": "0"}, data=b"abc"),
        await client.get(path, headers=bob),
        await client.delete(path, headers=bob),
        await client.post("/files/", headers={**bob, "Upload-Concat": f"final;{done}"}),
        await client.post(path, headers={**bob, "X-HTTP-Method-Override": "DELETE"}),
    ]
    assert [r.status for r in responses] == [404] * len(responses)
    unknown = await client.get("/files/doesnotexist", headers=bob)
    assert [await r.text() for r in responses[1:3]] == [await unknown.text()] * 2  # indistinguishable
    assert (await client.head(path, headers=alice)).headers["Upload-Offset"] == "0"  # untouched


@pytest.mark.slow  # the real CLI in a child process, once per configuration
def test_cli_refuses_unsafe_auth_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    for args in (["--jwt-secret", "short"], ["--jwt-secret", "x" * 40, "--jwt-algorithms", "none"]):
        result = subprocess.run(
            [sys.executable, "-m", "tusd_py", "--storage-dir", str(tmp_path), *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2
        assert "refusing to start" in result.stderr


@pytest.mark.slow  # the real CLI in a child process
def test_dev_token_command_mints_a_working_token(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    import jwt

    from tests.tokens import SECRET

    result = subprocess.run(
        [sys.executable, "-m", "tusd_py", "dev-token", "--jwt-secret", SECRET, "--user", "carol"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "carol" and claims["exp"] > claims["iat"]
