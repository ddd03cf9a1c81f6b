"""``tusd-py sweep`` and ``tusd-py cleanup`` end to end: the real CLI in a child process on a data
directory a server left, with the SQLite state file and with PostgreSQL.

They build and start the same parts as ``serve`` (tusd_py/server/runtime.py, one-shot steps), so
what they delete leaves the recordings and the quota ledger too, as the server's own sweep does.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.recordings.conftest import make_config, open_api, start_upload, tus_head, upload, wav_bytes
from tests.tokens import SECRET
from tusd_py.pipeline.steps import PermanentStepError, StepContext
from tusd_py.server.app import PIPELINE_KEY, SERVICE_KEY, make_app

pytestmark = pytest.mark.slow  # the real CLI in child processes


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_flags(request: pytest.FixtureRequest) -> dict[str, str]:
    """The state store of the server and of the commands: the SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("database_url")}


def run_command(command: str, storage: Path, state: dict[str, str], *flags: str) -> str:
    database = ["--database-url", state["database_url"]] if state else []
    done = subprocess.run(
        [sys.executable, "-m", "tusd_py", command, "--storage-dir", str(storage), *database, *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr, done.stderr
    return done.stdout


async def test_sweep_and_cleanup_on_a_servers_data(tmp_path: Path, state_flags: dict[str, str]) -> None:
    config = make_config(tmp_path, **state_flags)
    app = make_app(config)

    async def reject_bad(ctx: StepContext) -> dict[str, Any]:
        if ctx.recording.filename == "bad.wav":
            raise PermanentStepError("not a voice memo")
        return {}

    app[PIPELINE_KEY].steps.register("screen", reject_bad)
    wav = wav_bytes()
    async with TestClient(TestServer(app)) as client:
        api = await open_api(client)
        good = await upload(client, wav, filename="good.wav")
        bad = await upload(client, wav, filename="bad.wav")
        stale = await start_upload(client, 100, b"x" * 10)
        await api.wait_for(bad, "failed")
        await api.wait_for(good, "completed")
    made = time.monotonic()

    storage = tmp_path / "data"
    cleaned = run_command("cleanup", storage, state_flags, "--cleanup-failed-days", "0")
    assert "deleted 1 failed recordings" in cleaned
    time.sleep(max(0.0, made + 1.5 - time.monotonic()))  # the unfinished upload is idle for more than 1 s
    swept = run_command("sweep", storage, state_flags, "--expire-after", "1")
    assert "expired 1 uploads" in swept

    async with TestClient(TestServer(make_app(config))) as client:
        api = await open_api(client)
        assert await tus_head(client, good) == 200
        assert await tus_head(client, bad) == 404 and await tus_head(client, stale) == 404
        # The commands told the recordings too: the failed one and the expired one are gone.
        assert [item["id"] for item in (await api.get("/api/recordings"))["items"]] == [good]


@pytest.mark.postgres
async def test_a_sweep_gives_the_deleted_uploads_quota_back(tmp_path: Path, database_url: str) -> None:
    """The PostgreSQL ledger is durable and shared: a cron sweep (no auth flags, it serves nobody)
    must release what it deletes, or the owner's quota stays spent for good."""
    config = make_config(tmp_path, database_url=database_url, jwt_secret=SECRET, quota_unfinished=5)
    async with TestClient(TestServer(make_app(config))) as client:
        await start_upload(client, 100, b"x" * 10, user="alice")
        await start_upload(client, 200, b"y" * 10, user="alice")
        ledger = client.app[SERVICE_KEY].quotas
        assert ledger is not None
        before = await ledger.usage("alice")
        assert (before.unfinished, before.bytes) == (2, 300)
    made = time.monotonic()
    time.sleep(max(0.0, made + 1.5 - time.monotonic()))
    swept = run_command("sweep", tmp_path / "data", {"database_url": database_url}, "--expire-after", "1")
    assert "expired 2 uploads" in swept

    async with TestClient(TestServer(make_app(config))) as client:
        ledger = client.app[SERVICE_KEY].quotas
        assert ledger is not None
        after = await ledger.usage("alice")
        assert (after.unfinished, after.bytes) == (0, 0)
