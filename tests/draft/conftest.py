"""A tusd-py with auth on, served on a loopback port, on the filesystem and on S3 (SeaweedFS)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from storage_backends.base import DataStore, UploadInfo
from tests.tokens import SECRET, bearer
from tusd_py.app import make_app
from tusd_py.config import Config
from tusd_py.hooks import HookRegistry, HookType

MAX_SIZE = 1_000_000
QUOTA = 600_000


@dataclass
class DraftServer:
    client: TestClient[Any, Any]
    store: DataStore
    finished: list[str] = field(default_factory=list)  # post-finish hook events, by upload id
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def port(self) -> int:
        port = self.client.server.port
        assert port is not None
        return port

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


async def start(aiohttp_client: Any, config: Config, store: DataStore | None = None) -> DraftServer:
    hooks = HookRegistry()
    holder: list[DraftServer] = []

    async def on_finish(event: Any) -> None:
        holder[0].finished.append(event.upload.id)
        holder[0].events.append(("post-finish", {"metadata": dict(event.upload.metadata)}))

    hooks.register(HookType.POST_FINISH, on_finish)
    app = make_app(config, store=store, hooks=hooks)
    client = await aiohttp_client(app)
    from tusd_py.app import SERVICE_KEY

    server = DraftServer(client=client, store=app[SERVICE_KEY].store)
    holder.append(server)
    return server


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
async def draft_server(request: pytest.FixtureRequest, aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[DraftServer]:
    store = None
    if request.param == "s3":
        from storage_backends.s3 import S3Store
        from tests.s3.conftest import make_config

        seaweed = request.getfixturevalue("seaweed")
        store = S3Store(make_config(seaweed, f"draft-{secrets.token_hex(4)}/"))
    yield await start(aiohttp_client, draft_config(tmp_path), store)


async def stored(server: DraftServer, upload_id: str) -> UploadInfo:
    return await server.store.get_info(upload_id)
