"""The conformance runner finds the draft versions a server speaks by asking for each one, so a
server that speaks only some of them is checked on those (and one that speaks none, on none)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conformance.checks_draft import DRAFT, version_tag
from conformance.client import Client
from conformance.runner import advertised_extensions
from tests.draft.conftest import draft_config, serve
from tusd_py.protocol.draft_versions import VERSIONS


async def _found(tmp_path: Path, **config: object) -> set[str]:
    async with serve(draft_config(tmp_path, **config)) as server:
        client = Client(f"http://127.0.0.1:{server.port}/files/", server.auth())
        return await asyncio.to_thread(advertised_extensions, client)  # a blocking client: off the loop


async def test_every_served_version_is_found(tmp_path: Path) -> None:
    found = await _found(tmp_path)
    assert {DRAFT[0], *(version_tag(n) for n in VERSIONS)} <= found


async def test_a_server_without_the_draft_gets_no_draft_checks(tmp_path: Path) -> None:
    found = await _found(tmp_path, disabled_extensions=["resumable-upload-draft"])
    assert not {name for name in found if name.startswith(DRAFT[0])}
