"""The gate over the whole route table: every route x every wire method x every override x
(no token | another user's token), on a real app with auth on.

What must hold (tusd_py.protocol.operation): without a token nothing but a plain OPTIONS and the
public routes runs; another user's token never reaches alice's uploads; afterwards alice's uploads
are exactly as they were and no upload without an owner exists.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from storage_backends.filesystem import FileStore
from tests.client.tus import OCTET, TUS, id_of, upload
from tests.tokens import bearer
from tusd_py.config.values import Config
from tusd_py.http.gate import PUBLIC_ROUTE_PREFIX, TUS_ROUTE_PREFIX
from tusd_py.protocol.operation import OVERRIDE_TARGETS
from tusd_py.server.app import make_app

WIRE_METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "PUT"]
OVERRIDES = [None, "GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "bogus"]
# Adding a public route means adding it here: a reviewer then sees that it runs without a token.
EXPECTED_PUBLIC = {
    "public.healthz",
    "public._api.openapi",
    "public._api._v1.openapi",
    "public.demo-redirect",
    "public.demo-config",
    "public.demo-files",
    "public.metrics",
    "public.readyz",
    "public.signed-download",
}
CONTENT = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 25\r\n\r\n<script>alert(1)</script>"


def route_names(app: web.Application) -> set[str]:
    return {route.resource.name or "" for route in app.router.routes() if route.resource is not None}


def every_route(config: Config) -> Config:
    """The configuration that mounts every route the server has (the demo is off by default)."""
    return msgspec.structs.replace(config, demo=True)


def test_every_route_is_named_and_classified(auth_config: Config) -> None:
    app = make_app(every_route(auth_config))
    names = route_names(app)
    assert "" not in names, "an unnamed route: the gate cannot tell what it is"
    assert all(name.startswith((TUS_ROUTE_PREFIX, "api.", PUBLIC_ROUTE_PREFIX)) for name in names), names
    assert {n for n in names if n.startswith(PUBLIC_ROUTE_PREFIX)} == EXPECTED_PUBLIC


async def alice_uploads(client: TestClient) -> dict[str, str]:
    alice = bearer("alice")
    return {
        "unfinished": await upload(client, CONTENT[:3], auth=alice, length=len(CONTENT)),
        "finished": await upload(client, CONTENT, auth=alice),
        "partial": await upload(client, CONTENT, auth=alice, Upload_Concat="partial"),
    }


def concrete_paths(app: web.Application, upload_path: str) -> list[tuple[str, str]]:
    upload_id = id_of(upload_path)
    paths = []
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info["formatter"].replace("{upload_id}", upload_id)
        paths.append((resource.name or "", path))
    return paths


async def snapshot(client: TestClient, paths: dict[str, str]) -> dict[str, tuple[int, str, bytes]]:
    alice = {**TUS, **bearer("alice")}
    state = {}
    for name, path in paths.items():
        head = await client.head(path, headers=alice)
        body = await (await client.get(path, headers=alice)).read() if name != "unfinished" else b""
        state[name] = (head.status, head.headers.get("Upload-Offset", ""), body)
    return state


@pytest.fixture
async def app_client(aiohttp_client, auth_config: Config) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(make_app(every_route(auth_config)))  # type: ignore[no-any-return]


# tus requests, and requests of the IETF resumable-upload draft (same routes, other handlers).
PROTOCOLS = {
    "tus": TUS,
    "draft": {"Upload-Draft-Interop-Version": "8", "Upload-Complete": "?1"},
}


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("who", ["nobody", "bob"])
async def test_no_route_method_or_override_lets_a_stranger_in(
    app_client: TestClient, auth_config: Config, who: str, protocol: str
) -> None:
    uploads = await alice_uploads(app_client)
    before = await snapshot(app_client, uploads)
    credentials = bearer("bob") if who == "bob" else {}
    seen: set[tuple[str, int]] = set()
    methods: dict[str, set[str]] = {}
    for route in app_client.app.router.routes():
        methods.setdefault(route.resource.name or "", set()).add(route.method)  # type: ignore[union-attr]
    for target in uploads.values():
        for (name, path), wire, override in itertools.product(
            concrete_paths(app_client.app, target), WIRE_METHODS, OVERRIDES
        ):
            headers = {**PROTOCOLS[protocol], **OCTET, **credentials, "Upload-Offset": "3", "Upload-Length": "3"}
            if override is not None:
                headers["X-HTTP-Method-Override"] = override
            resp = await app_client.request(wire, path, headers=headers, data=b"xyz")
            body = await resp.read()
            status = resp.status
            seen.add((name, status))
            where = f"{who}: {wire} {path} override={override} -> {status} {body[:80]!r}"
            refused_override = override is not None and (
                wire != "POST" or override not in OVERRIDE_TARGETS or not name.startswith(TUS_ROUTE_PREFIX)
            )
            if refused_override:
                assert status == 400, where
            elif name in EXPECTED_PUBLIC and wire in methods[name]:
                assert (status != 401 and status < 500) or status == 503, where  # 503: the demo is not built
            elif wire == "OPTIONS":  # a plain OPTIONS: capabilities or 405, never an upload's state
                assert status in (204, 405), where
                assert "Upload-Offset" not in resp.headers, where
            elif who == "nobody":
                assert status == 401, where
                assert resp.headers["WWW-Authenticate"].startswith("Bearer"), where
            else:  # bob, with a valid token: his own creations succeed, alice's uploads stay hidden
                created = status == 201 and name.startswith("tus.collection")
                listing = status == 200 and name.startswith("api.") and "{" not in name
                own_api = status == 200 and name in ("api._api.recordings", "api._api.queue", "api._api.stats")
                own_post = status == 200 and name in ("api._api.sync", "api._api.cleanup")
                assert created or listing or own_api or own_post or status in (400, 404, 405, 409, 412, 413, 415), where
                assert CONTENT not in body, where
    assert await snapshot(app_client, uploads) == before
    store = FileStore(Path(auth_config.storage_dir))
    owners = {info.owner async for info in store.list_uploads()}
    assert None not in owners, "an upload without an owner was created"
    assert owners <= {"alice", "bob"}
    assert any(status == 401 for _, status in seen) or who == "bob"


async def test_bob_cannot_concatenate_alices_partial_even_through_an_override(app_client: TestClient) -> None:
    uploads = await alice_uploads(app_client)
    for headers in ({}, bearer("bob")):
        for wire, override in (("POST", None), ("POST", "POST"), ("OPTIONS", "POST")):
            extra = {"X-HTTP-Method-Override": override} if override else {}
            resp = await app_client.request(
                wire, "/files/", headers={**TUS, **headers, **extra, "Upload-Concat": f"final;{uploads['partial']}"}
            )
            assert resp.status in (400, 401, 404), (headers, wire, override, resp.status)


async def test_a_valid_token_reaches_every_override(app_client: TestClient) -> None:
    """The override still works for its owner: the gate changes who, not what."""
    uploads = await alice_uploads(app_client)
    alice = {**TUS, **bearer("alice")}
    path = uploads["unfinished"]
    resp = await app_client.post(path, headers={**alice, "X-HTTP-Method-Override": "HEAD"})
    assert resp.status == 200 and resp.headers["Upload-Offset"] == "3"
    resp = await app_client.post(
        path, headers={**alice, **OCTET, "Upload-Offset": "3", "X-HTTP-Method-Override": "PATCH"}, data=b"TTP"
    )
    assert resp.status == 204 and resp.headers["Upload-Offset"] == "6"
    resp = await app_client.post(uploads["finished"], headers={**alice, "X-HTTP-Method-Override": "GET"})
    assert resp.status == 200 and await resp.read() == CONTENT
    resp = await app_client.post(path, headers={**alice, "X-HTTP-Method-Override": "DELETE"})
    assert resp.status == 204
    assert (await app_client.head(path, headers=alice)).status == 404
