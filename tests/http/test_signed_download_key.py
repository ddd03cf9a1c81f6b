"""One signing key for every process and instance that can serve a signed download link.

A link is checked by whichever process the player reaches: with ``--processes N`` or instances
sharing ``--redis-url``, the key must be shared (``--download-signing-key``, or derived from
``--jwt-secret``); with public-key or JWKS auth and neither, the server refuses to start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from conformance.live_server import free_port
from tests.auth.auth_support import write_pem
from tests.client.tus import id_of, upload
from tests.tokens import SECRET, claims
from tusd_py.config.refusals import signing_key_refusal
from tusd_py.config.values import Config
from tusd_py.http.downloads import SigningKeyMissing
from tusd_py.server.app import make_app

KEY = "a-download-link-key-shared-by-all-" + "k" * 8
DATA = b"one recording, many players " * 100


@pytest.fixture(scope="module")
def rsa_private() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def alice(private: rsa.RSAPrivateKey) -> dict[str, str]:
    return {"Authorization": "Bearer " + jwt.encode(claims(sub="alice"), private, algorithm="RS256")}


@pytest.mark.parametrize(
    ("settings", "refused_for"),
    [
        ({}, None),  # one process alone: a random key per start works (and is logged)
        ({"processes": 2}, None),  # one host: the supervisor hands its workers one key per run
        ({"processes": 2, "database_url": "postgresql://127.0.0.1:1/x"}, None),
        ({"redis_url": "redis://127.0.0.1:1/0"}, "--redis-url"),
        ({"processes": 3, "redis_url": "redis://127.0.0.1:1/0"}, "--processes 3 with --redis-url"),
        ({"processes": 2, "download_signing_key": KEY}, None),
        ({"redis_url": "redis://127.0.0.1:1/0", "jwt_secret": SECRET}, None),  # derived from the shared secret
    ],
)
def test_several_servers_need_a_shared_key(settings: dict[str, Any], refused_for: str | None) -> None:
    refusal = signing_key_refusal(Config(**settings))
    if refused_for is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.startswith(f"{refused_for} lets several processes or instances serve")
        assert "--download-signing-key" in refusal and "--jwt-secret" in refusal


def test_the_app_refuses_public_key_auth_with_shared_locks_and_no_key(
    tmp_path: Path, rsa_private: rsa.RSAPrivateKey
) -> None:
    config = Config(
        storage_dir=str(tmp_path), jwt_public_key=write_pem(tmp_path, rsa_private), redis_url="redis://127.0.0.1:1/0"
    )
    with pytest.raises(SigningKeyMissing, match="--download-signing-key"):
        make_app(config)


async def test_a_link_issued_by_one_instance_is_accepted_by_another(  # type: ignore[no-untyped-def]
    aiohttp_client, tmp_path: Path, rsa_private: rsa.RSAPrivateKey
) -> None:
    """Two instances on one storage, public-key auth (no secret to derive from), one given key."""
    pem = write_pem(tmp_path, rsa_private)

    def instance(number: int) -> Config:
        return Config(
            storage_dir=str(tmp_path / "shared"), state_db=str(tmp_path / f"state-{number}.sqlite3"),
            jwt_public_key=pem, jwt_algorithms=["RS256"], download_signing_key=KEY, workers=0,
        )  # fmt: skip

    one: TestClient = await aiohttp_client(make_app(instance(1)))
    two: TestClient = await aiohttp_client(make_app(instance(2)))
    upload_id = id_of(await upload(one, DATA, auth=alice(rsa_private)))
    resp = await one.post(f"/api/recordings/{upload_id}/download-url", headers=alice(rsa_private))
    assert resp.status == 200, await resp.text()
    link = "/download/" + (await resp.json())["url"].split("/download/", 1)[1]
    for server in (two, one):
        resp = await server.get(link)  # no token: the link is the credential
        assert resp.status == 200 and await resp.read() == DATA


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tusd_py", "serve", "--host", "127.0.0.1", "--port", str(free_port()), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUSD_PY_")}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)


@pytest.mark.parametrize("several", [("--processes", "2", "--database-url", "postgresql://127.0.0.1:1/x"), ()])
def test_the_command_refuses_to_start_and_names_the_flag(
    tmp_path: Path, rsa_private: rsa.RSAPrivateKey, several: tuple[str, ...]
) -> None:
    """Refused before any worker starts or Redis is asked (its address here answers nothing)."""
    done = _serve(
        "--storage-dir", str(tmp_path / "data"), "--jwt-public-key", write_pem(tmp_path, rsa_private),
        "--redis-url", "redis://127.0.0.1:1/0", *several,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("tusd-py:")]
    assert len(said) == 1 and "lets several processes or instances serve" in said[0], done.stderr
    assert "--download-signing-key" in said[0]
    assert '"serving"' not in done.stderr and "Traceback" not in done.stderr
