"""Every way in x every operation x every caller: the same outcome, decided in one place.

Each row is one surface performing one operation (tus, the resumable-upload draft, the Recordings
API, a signed link); each column one caller: the owner, another user, no token, the operation
switched off (``--disable-extensions``), the owner's quota exhausted, a lock whose fence was lost.
Every surface reaches :class:`tusd_py.uploads.operations.Uploads`, so the expectations follow one
rule per column: another user gets 404 (the upload is none of theirs), no token 401, a switched-off
operation 405 (400 for a switched-off feature of an allowed one), an exhausted quota 413 wherever
bytes would be claimed, a lost fence 423 wherever a commit would happen, and the owner succeeds.

Each run sets its uploads up on a full-featured server, then restarts on the same storage as the
variant under test (switch off, fence lost) and performs the one request.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.client.tus import OCTET, TUS, create, id_of, upload
from tests.tokens import SECRET, bearer
from tusd_py.config.values import Config
from tusd_py.locks.locker import InProcessLocker
from tusd_py.model.fencing import Fence, FenceLost
from tusd_py.protocol.draft_versions import INTEROP_HEADER
from tusd_py.server.app import make_app

QUOTA = 10_000
ALICE, BOB = bearer("alice", ttl=24 * 3600), bearer("bob", ttl=24 * 3600)  # made at import: outlive any suite run
DRAFT = {INTEROP_HEADER: "8"}
PARTIAL_UPLOAD = {"Content-Type": "application/partial-upload"}


class _LostFence:
    token = 1

    async def check(self) -> None:
        raise FenceLost("this holder's lease ran out (injected)")


class LosingLocker(InProcessLocker):
    """The in-process locker, except that once armed every lock's fence is lost: a fault a single
    process cannot produce for real (tests/scale covers the real one, a paused Redis holder)."""

    def __init__(self) -> None:
        super().__init__(timeout=1.0)
        self.armed = False

    @contextlib.asynccontextmanager
    async def lock(self, upload_id: str, on_release_request: Callable[[], None] | None = None) -> AsyncIterator[Fence]:
        async with super().lock(upload_id, on_release_request) as fence:
            yield _LostFence() if self.armed else fence

    @contextlib.asynccontextmanager
    async def try_lock(self, upload_id: str) -> AsyncIterator[Fence]:
        async with super().try_lock(upload_id) as fence:
            yield _LostFence() if self.armed else fence


def config_for(tmp_path: Path, disabled: list[str]) -> Config:
    return Config(
        storage_dir=str(tmp_path / "data"),
        jwt_secret=SECRET,
        quota_bytes=QUOTA,
        quota_unfinished=50,
        max_size=QUOTA,
        workers=0,
        sweep_interval=0,
        cleanup_interval=0,
        lock_timeout=1.0,
        disabled_extensions=disabled,
    )


@dataclass
class Uploads:
    """Alice's uploads, made before the request under test."""

    half: str  # length 20, 5 bytes in
    nearly: str  # length 10, 5 bytes in: the next 5 finish it
    deferred: str  # length deferred, nothing in
    done: str  # finished, 10 bytes
    victim: str  # finished, to delete
    partial: str  # a finished partial upload
    link: str  # a signed download link for ``done``


async def set_up(client: TestClient) -> Uploads:
    half = await upload(client, b"a" * 5, auth=ALICE, length=20)
    nearly = await upload(client, b"b" * 5, auth=ALICE, length=10)
    deferred = await create(client, None, **ALICE, Upload_Defer_Length="1")
    done = await create(client, 10, data=b"c" * 10, **ALICE)
    victim = await create(client, 10, data=b"d" * 10, **ALICE)
    partial = await create(client, 10, data=b"e" * 10, **ALICE, Upload_Concat="partial")
    resp = await client.post(f"/api/recordings/{id_of(done)}/download-url", headers=ALICE)
    assert resp.status == 200, await resp.text()
    link = "/download/" + (await resp.json())["url"].split("/download/", 1)[1]
    return Uploads(half, nearly, deferred, done, victim, partial, link)


async def exhaust_quota(client: TestClient) -> None:
    stats = await (await client.get("/api/stats", headers=ALICE)).json()
    left = stats["quota"]["bytes_left"]
    if left:
        await create(client, left, **ALICE)


Act = Callable[[TestClient, Uploads, dict[str, str]], Awaitable[ClientResponse]]


@dataclass(frozen=True)
class Row:
    surface: str
    op: str
    act: Act
    ok: int
    switch: str | None = None  # the extension whose absence switches the operation off
    off: int = 405
    quota: bool = False  # claims bytes: 413 when the quota is exhausted
    commits: bool = False  # commits under a lock: 423 when the fence is lost
    anyone: bool = False  # another user's request is just their own (creation, a link): same as the owner


ROWS = [
    Row("tus", "create", lambda c, u, h: c.post("/files/", headers={**TUS, **h, "Upload-Length": "10"}),
        201, "creation", quota=True, anyone=True),
    Row("tus", "create+append", lambda c, u, h: c.post(
        "/files/", headers={**TUS, **h, **OCTET, "Upload-Length": "10"}, data=b"x" * 10),
        201, "creation-with-upload", off=400, quota=True, commits=True, anyone=True),
    Row("tus", "append", lambda c, u, h: c.patch(
        u.half, headers={**TUS, **h, **OCTET, "Upload-Offset": "5"}, data=b"x" * 5), 204, commits=True),
    Row("tus", "append+finish", lambda c, u, h: c.patch(
        u.nearly, headers={**TUS, **h, **OCTET, "Upload-Offset": "5"}, data=b"x" * 5), 204, commits=True),
    Row("tus", "declare length", lambda c, u, h: c.patch(
        u.deferred, headers={**TUS, **h, **OCTET, "Upload-Offset": "0", "Upload-Length": "10"}, data=b""),
        204, "creation-defer-length", off=400, quota=True, commits=True),
    Row("tus", "read (HEAD)", lambda c, u, h: c.head(u.half, headers={**TUS, **h}), 200),
    Row("tus", "read (GET)", lambda c, u, h: c.get(u.done, headers=h), 200),
    Row("tus", "delete", lambda c, u, h: c.delete(u.victim, headers={**TUS, **h}), 204, "termination",
        commits=True),
    Row("tus", "concatenate", lambda c, u, h: c.post(
        "/files/", headers={**TUS, **h, "Upload-Concat": f"final;{u.partial}"}),
        201, "concatenation", quota=True, commits=True),
    Row("draft", "create", lambda c, u, h: c.post(
        "/files/", headers={**DRAFT, **h, "Upload-Complete": "?1"}, data=b"x" * 5),
        201, "creation", quota=True, commits=True, anyone=True),
    Row("draft", "append", lambda c, u, h: c.patch(
        u.half, headers={**DRAFT, **h, **PARTIAL_UPLOAD, "Upload-Offset": "5", "Upload-Complete": "?0"},
        data=b"x" * 5), 204, commits=True),
    Row("draft", "read (HEAD)", lambda c, u, h: c.head(u.half, headers={**DRAFT, **h}), 204),
    Row("draft", "delete", lambda c, u, h: c.delete(u.victim, headers={**DRAFT, **h}), 204, "termination",
        commits=True),
    Row("api", "read", lambda c, u, h: c.get(f"/api/recordings/{id_of(u.done)}", headers=h), 200),
    Row("api", "read (download link)", lambda c, u, h: c.post(
        f"/api/recordings/{id_of(u.done)}/download-url", headers=h), 200),
    Row("api", "delete", lambda c, u, h: c.delete(f"/api/recordings/{id_of(u.victim)}", headers=h), 204,
        "termination", commits=True),
    Row("api", "delete (cleanup)", lambda c, u, h: c.post("/api/cleanup", headers=h), 200, "termination",
        anyone=True),
    Row("signed link", "read", lambda c, u, h: c.get(u.link, headers=h), 200, anyone=True),
]  # fmt: skip

CALLERS = ["owner", "another user", "no token", "switched off", "quota exhausted", "fence lost"]


def expected(row: Row, caller: str) -> int:
    """One rule per column (see the module docstring)."""
    if caller == "another user":
        return row.ok if row.anyone else 404
    if caller == "no token":
        return row.ok if row.surface == "signed link" else 401
    if caller == "switched off":
        return row.off if row.switch is not None else row.ok
    if caller == "quota exhausted":
        return 413 if row.quota else row.ok
    if caller == "fence lost":
        return 423 if row.commits else row.ok
    return row.ok


def test_the_table_covers_every_surface_and_operation() -> None:
    ops = {(row.surface, row.op.split(" ")[0].split("+")[0]) for row in ROWS}
    for op in ("create", "append", "read", "declare", "delete", "concatenate"):
        assert ("tus", op) in ops
    for op in ("create", "append", "read", "delete"):
        assert ("draft", op) in ops
    assert {row.surface for row in ROWS} == {"tus", "draft", "api", "signed link"}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row.surface}-{row.op}")
async def test_one_outcome_per_caller(aiohttp_client: Any, tmp_path: Path, row: Row, caller: str) -> None:
    setup = await aiohttp_client(make_app(config_for(tmp_path, [])))
    uploads = await set_up(setup)
    await setup.close()
    disabled = [row.switch] if caller == "switched off" and row.switch is not None else []
    locker = LosingLocker()
    client: TestClient = await aiohttp_client(make_app(config_for(tmp_path, disabled), locker=locker))
    if caller == "quota exhausted":
        await exhaust_quota(client)
    locker.armed = caller == "fence lost"
    headers = {"owner": ALICE, "another user": BOB, "no token": {}}.get(caller, ALICE)
    resp = await row.act(client, uploads, headers)
    want = expected(row, caller)
    assert resp.status == want, f"{row.surface} {row.op} by {caller}: {resp.status} {await resp.text()}"
    if resp.status >= 400 and resp.status != 401:
        assert (await resp.text()).strip() or row.op.startswith("read"), "a refusal says why"
