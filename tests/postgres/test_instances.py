"""Several tusd-py instances on one PostgreSQL: quotas never jointly exceeded, every job done once.

Real subprocesses (conformance/live_server.py) with JWT auth on, sharing a storage directory
and a database; the test drives them over HTTP and reads the shared state with asyncpg.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from conformance.live_server import LiveServer
from tests.postgres.instances import create, fetch, instances, upload, wait_until_completed
from tests.tokens import bearer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

QUOTA = 10_000
LENGTH = 1_000


async def test_instances_racing_for_the_last_bytes_never_exceed_the_quota(tmp_path: Path, database_url: str) -> None:
    with instances(
        3, tmp_path / "data", database_url, "--quota-bytes", str(QUOTA), "--quota-unfinished", "0"
    ) as servers:
        async with aiohttp.ClientSession() as session:
            # 40 creations of 1,000 bytes at once, spread over three instances: room for 10.
            responses = await asyncio.gather(*(create(session, servers[n % 3], "alice", LENGTH) for n in range(40)))
            statuses = sorted(resp.status for resp in responses)
            assert statuses == [201] * (QUOTA // LENGTH) + [413] * (40 - QUOTA // LENGTH)
            refused = next(resp for resp in responses if resp.status == 413)
            assert refused.headers["Content-Type"].startswith("text/plain")
            (usage,) = await fetch(database_url, "SELECT bytes, unfinished FROM quota_usage WHERE owner = 'alice'")
            assert usage["bytes"] == QUOTA and usage["unfinished"] == QUOTA // LENGTH
            # Termination at one instance frees room that another instance then grants, once.
            made = [resp.headers["Location"] for resp in responses if resp.status == 201]
            async with session.delete(made[0], headers={"Tus-Resumable": "1.0.0", **bearer("alice")}) as deleted:
                assert deleted.status == 204
            again = await asyncio.gather(*(create(session, servers[n % 3], "alice", LENGTH) for n in range(6)))
            assert sorted(resp.status for resp in again) == [201] + [413] * 5
            # Another user has a quota of their own.
            assert (await create(session, servers[1], "bob", LENGTH)).status == 201


async def test_every_finished_upload_is_processed_once_even_when_an_instance_is_killed_mid_job(
    tmp_path: Path, database_url: str
) -> None:
    data_size = 24 * 1024 * 1024  # the digest step takes long enough to catch a job running
    with instances(3, tmp_path / "data", database_url, "--job-lease", "2", "--workers", "1") as servers:
        by_pid = {server.process.pid: server for server in servers if server.process is not None}
        ids: list[str] = []
        killed: tuple[str, int] | None = None
        async with aiohttp.ClientSession() as session:
            for round_ in range(6):  # bounded: stop once an instance was killed holding a job
                blobs = [os.urandom(data_size) for _ in range(3)]
                ids += await asyncio.gather(
                    *(upload(session, servers[(round_ + n) % 3], "alice", blob) for n, blob in enumerate(blobs))
                )
                killed = await _kill_one_holding_a_job(database_url, by_pid)
                if killed is not None:
                    break
            assert killed is not None, "no job was ever caught running; the machine is too fast for this test"
            killed_at = time.monotonic()
            rows = await wait_until_completed(database_url, ids)
            took_over_after = time.monotonic() - killed_at
        upload_id, token = killed
        jobs = {
            row["upload_id"]: row
            for row in await fetch(database_url, "SELECT * FROM jobs WHERE upload_id = ANY($1::text[])", ids)
        }
        assert len(jobs) == len(ids) and all(job["status"] == "done" for job in jobs.values())
        # The killed instance's job was taken over by a live one (new claim) within its lease, not at a restart.
        assert jobs[upload_id]["claim_token"] > token and jobs[upload_id]["attempts"] == 2
        assert took_over_after < 60
        # Every other job ran once, and each upload's results were recorded once (one digest each).
        assert all(job["attempts"] == 1 for uid, job in jobs.items() if uid != upload_id)
        assert all(row["results"].count('"sha256"') == 1 for row in rows)


async def _kill_one_holding_a_job(database_url: str, by_pid: dict[int, LiveServer]) -> tuple[str, int] | None:
    """Freeze the instance that holds a running job, and SIGKILL it if it still holds it."""
    for _ in range(600):  # bounded: ~30 s of polling
        rows = await fetch(database_url, "SELECT upload_id, claim_token, claimed_by FROM jobs WHERE status = 'running'")
        for row in rows:
            pid = int(row["claimed_by"].split(":")[1])
            if pid not in by_pid:
                continue
            os.kill(pid, signal.SIGSTOP)
            (still,) = await fetch(
                database_url, "SELECT status, claim_token FROM jobs WHERE upload_id = $1", row["upload_id"]
            )
            if still["status"] == "running" and still["claim_token"] == row["claim_token"]:
                by_pid.pop(pid).kill()  # SIGKILL by PID, reaped: the crash case
                return row["upload_id"], row["claim_token"]
            os.kill(pid, signal.SIGCONT)
        done = await fetch(database_url, "SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running')")
        if done[0]["n"] == 0:
            return None
        await asyncio.sleep(0.05)
    return None
