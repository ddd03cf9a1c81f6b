"""Crash safety: a crash between any two S3 calls, a SIGKILLed writer process, and a second
instance resuming, all end in a byte-identical object (the info object is the commit point)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from conformance.seaweed import SeaweedS3
from storage_backends.s3 import S3Store
from storage_backends.s3_config import S3Config
from storage_backends.s3_ledger import MIB
from tests.s3.conftest import make_config
from tests.s3.s3_support import S3Calls, chunks, payload, read_all
from tusd_py.model.upload import UploadInfo

pytestmark = pytest.mark.s3

ROOT = Path(__file__).resolve().parents[2]
SIZE = 13 * MIB + 4321
PATCH = 3 * MIB + 777  # unaligned PATCHes: tail segments, promotions and whole parts all happen


class Crash(BaseException):
    """The process died: raised by every S3 call from the chosen one on, so nothing later lands."""


def crash_at(store: S3Store, call_number: int) -> None:
    count = 0

    def hook(**_: Any) -> None:
        nonlocal count
        count += 1
        if count >= call_number:
            raise Crash(f"crash before S3 call {call_number}")

    store.objects._client.meta.events.register("before-call.s3", hook)


async def upload_rest(store: S3Store, upload_id: str, data: bytes) -> None:
    """What a tus client and the core do after a restart: HEAD, PATCH from the offset, finish."""
    info = await store.get_info(upload_id)
    for _ in range(100):  # bounded
        if info.offset == len(data):
            break
        end = min(info.offset + PATCH, len(data))
        await store.write(info, chunks(data[info.offset : end], 256 * 1024))
        info = await store.get_info(upload_id)
    if info.finished_at is None:
        info.finished_at, info.sha256 = time.time(), "00" * 32
    await store.finish(info)


async def test_crash_between_any_two_s3_calls_resumes_identically(s3_config: S3Config) -> None:
    data = payload(SIZE, seed=21)
    probe = S3Store(s3_config)
    await probe.start()
    calls = await S3Calls().attach(probe)
    await probe.create(UploadInfo(id="probe", length=SIZE))
    calls.reset()
    await upload_rest(probe, "probe", data)
    total_calls = calls.total
    await probe.close()
    assert total_calls > 10

    for number in range(1, total_calls + 1):
        upload_id = f"crash{number}"
        doomed = S3Store(s3_config)
        await doomed.start()
        await doomed.create(UploadInfo(id=upload_id, length=SIZE))
        crash_at(doomed, number)
        with pytest.raises(Crash):
            await upload_rest(doomed, upload_id, data)
        await doomed.close()  # a dead process's memory is gone; only S3 remains

        restarted = S3Store(s3_config)
        await restarted.start()
        try:
            before = await restarted.get_info(upload_id)
            assert 0 <= before.offset <= SIZE
            await upload_rest(restarted, upload_id, data)
            done = await restarted.get_info(upload_id)
            assert done.offset == SIZE and done.finished_at is not None
            assert await read_all(restarted, done) == data, f"crash before call {number}"
        finally:
            await restarted.close()


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.12, 0.3])
async def test_sigkilled_writer_process_resumes_byte_identical(
    seaweed: SeaweedS3, tmp_path: Path, delay: float
) -> None:
    config = make_config(seaweed, f"kill-{secrets.token_hex(4)}/", part_concurrency=3)
    size, seed = 40 * MIB + 999, 31
    store = S3Store(config)
    await store.start()
    try:
        await store.create(UploadInfo(id="killed", length=size))
        args = [
            sys.executable, "-m", "tests.s3.crash_writer",
            msgspec.json.encode(config).decode(), "killed", str(size), str(seed), str(7 * MIB + 3),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        writer = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            assert writer.stdout is not None
            seen = 0
            async with asyncio.timeout(60):
                while seen < 10 * MIB:  # at least one PATCH of whole parts recorded
                    line = (await writer.stdout.readline()).decode()
                    assert line.startswith("offset"), f"writer ended early: {line!r}"
                    seen = int(line.split()[1])
            await asyncio.sleep(delay)  # land the kill at a different point between S3 calls each time
            os.kill(writer.pid, signal.SIGKILL)
        finally:
            if writer.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(writer.pid, signal.SIGKILL)
            await asyncio.wait_for(writer.wait(), 10)
        killed_at = (await store.get_info("killed")).offset
        assert seen <= killed_at < size

        resumed = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(resumed.communicate(), 120)
        assert resumed.returncode == 0, err.decode()[-2000:]
        assert out.decode().strip().endswith("done")
        info = await store.get_info("killed")
        digest = hashlib.sha256()
        async for block in store.read(info):
            digest.update(block)
        assert digest.hexdigest() == hashlib.sha256(payload(size, seed)).hexdigest()
    finally:
        await store.close()


async def test_second_instance_resumes_what_the_first_started(s3_config: S3Config) -> None:
    data = payload(17 * MIB + 3, seed=41)
    first, second = S3Store(s3_config), S3Store(s3_config)
    await first.start()
    await second.start()
    try:
        await first.create(UploadInfo(id="shared", length=len(data), metadata={"filetype": b"text/plain"}))
        info = await first.get_info("shared")
        half = len(data) // 2  # a whole part and a tail segment: B must pick the tail up from S3
        await first.write(info, chunks(data[:half], MIB))

        info = await second.get_info("shared")
        assert info.offset == half
        await second.write(info, chunks(data[half:], MIB))
        info = await second.get_info("shared")
        info.finished_at, info.sha256 = time.time(), hashlib.sha256(data).hexdigest()
        await second.finish(info)

        done = await first.get_info("shared")
        assert done.sha256 == hashlib.sha256(data).hexdigest()
        assert await read_all(first, done) == data
    finally:
        await first.close()
        await second.close()
