"""A tusd-py with auth on, served on a loopback port, on the filesystem and on S3 (SeaweedFS).

Served by a plain ``web.AppRunner`` as ``tusd-py serve`` does, not by aiohttp's TestServer: that
one cancels a handler whose client disconnects (``handler_cancellation=True``), which production
never does, and a cut-off upload is what these tests are about.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from storage_backends.base import DataStore
from tests.tokens import SECRET, bearer
from tusd_py.config.values import Config
from tusd_py.hooks import HookRegistry, HookType
from tusd_py.hooks.registry import PreFinishHook
from tusd_py.model.upload import UploadInfo
from tusd_py.server.app import SERVICE_KEY, make_app

MAX_SIZE = 1_000_000
QUOTA = 600_000


@dataclass
class DraftServer:
    client: ClientSession  # base URL: the server
    store: DataStore
    port: int
    finished: list[str] = field(default_factory=list)  # post-finish hook events, by upload id
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @staticmethod
    def auth(user: str = "alice") -> dict[str, str]:
        return bearer(user)


def draft_config(tmp_path: Path, **overrides: Any) -> Config:
    values: dict[str, Any] = {
        "storage_dir": str(tmp_path / "data"),
        "jwt_secret": SECRET,
        "max_size": MAX_SIZE,
        "quota_bytes": QUOTA,
        "quota_unfinished": 20,
        "lock_timeout": 2.0,
    }
    values.update(overrides)
    return Config(**values)


@asynccontextmanager
async def serve(
    config: Config, store: DataStore | None = None, *, pre_finish: PreFinishHook | None = None
) -> AsyncIterator[DraftServer]:
    hooks = HookRegistry()
    if pre_finish is not None:
        hooks.register(HookType.PRE_FINISH, pre_finish)
    holder: list[DraftServer] = []

    async def on_finish(event: Any) -> None:
        holder[0].finished.append(event.upload.id)
        holder[0].events.append(("post-finish", {"metadata": dict(event.upload.metadata)}))

    hooks.register(HookType.POST_FINISH, on_finish)
    app = make_app(config, store=store, hooks=hooks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
            server = DraftServer(client=client, store=app[SERVICE_KEY].store, port=port)
            holder.append(server)
            yield server
    finally:
        await runner.cleanup()


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
async def draft_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DraftServer]:
    store = None
    if request.param == "s3":
        from storage_backends.s3 import S3Store
        from tests.s3.conftest import make_config

        seaweed = request.getfixturevalue("seaweed")
        store = S3Store(make_config(seaweed, f"draft-{secrets.token_hex(4)}/"))
    async with serve(draft_config(tmp_path), store) as server:
        yield server


async def stored(server: DraftServer, upload_id: str) -> UploadInfo:
    return await server.store.get_info(upload_id)
