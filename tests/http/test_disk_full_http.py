"""A full disk: 507 with a reason, the bytes that reached the disk kept and reported, nothing lost.

On a real 1 MiB tmpfs (mounting needs root; the test is skipped, saying so, without it). The
one fault a real disk cannot produce on demand, space coming back between two writes of one
request, is injected in tests/storage/test_filesystem_full.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.tus import TUS, create, id_of, offset_of, patch, upload_files
from tusd_py.config.values import Config
from tusd_py.server.app import make_app

MIB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (root needed): {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def payload(size: int) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


async def test_full_disk_is_507_keeping_what_reached_it(aiohttp_client: Any, small_disk: Path, tmp_path: Path) -> None:
    data_dir = small_disk / "data"
    config = Config(storage_dir=str(data_dir), state_db=str(tmp_path / "state.sqlite3"), max_size=8 * MIB)
    client = await aiohttp_client(make_app(config))
    filler = await create(client, 400 * 1024)  # deleted later, to make room again
    assert (await patch(client, filler, 0, b"f" * 400 * 1024)).status == 204
    data = payload(900 * 1024)  # more than the room left, less than the room once the filler is gone
    path = await create(client, len(data))

    resp = await patch(client, path, 0, data)
    assert resp.status == 507
    assert await resp.text() == "the server's storage is full; any bytes received so far are kept\n"
    kept = int(resp.headers["Upload-Offset"])
    assert 0 < kept < len(data)
    assert await offset_of(client, path) == kept  # HEAD is truthful
    assert (data_dir / id_of(path)).read_bytes() == data[:kept]  # and what is there is right

    # Retries and new uploads get the same clear answer, not a 500.
    resp = await patch(client, path, kept, data[kept:])
    assert resp.status == 507 and int(resp.headers["Upload-Offset"]) >= kept
    kept = int(resp.headers["Upload-Offset"])
    before = upload_files(data_dir)
    resp = await client.post("/files/", headers={**TUS, "Upload-Length": "10"})
    assert resp.status == 507
    assert upload_files(data_dir) == before  # a failed creation leaves nothing behind

    # Space freed: the upload resumes where it stopped and ends byte-identical.
    assert (await client.delete(filler, headers=TUS)).status == 204
    resp = await patch(client, path, kept, data[kept:])
    assert resp.status == 204, await resp.text()
    got = await client.get(path)
    assert got.status == 200 and await got.read() == data
    assert os.statvfs(small_disk).f_blocks * os.statvfs(small_disk).f_frsize <= MIB
