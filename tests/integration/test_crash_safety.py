"""Faults a real server process meets: vanished clients, kill -9, SIGTERM, competing requests.

Each test drives the real CLI server over real sockets and checks the bytes on disk afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from conformance.client import OCTET, TUS, Client
from conformance.live_server import LiveServer
from storage_backends.file_io import WRITE_BATCH
from tests.client.raw import PartialRequest
from tests.client.tus import id_of
from tests.client.wait import wait_until

pytestmark = pytest.mark.slow

PAYLOAD = os.urandom(8 * 1024 * 1024 + 12345)


def patch_headers(offset: int, length: int) -> dict[str, str]:
    return {**TUS, **OCTET, "Upload-Offset": str(offset), "Content-Length": str(length)}


def head_offset(client: Client, url: str) -> int:
    resp = client.head(url)
    assert resp.status == 200, resp.status
    return int(resp.header("Upload-Offset") or -1)


def resume_and_verify(client: Client, url: str) -> None:
    """What any tus client does next: HEAD, PATCH the rest, and the file must be byte-identical."""
    offset = head_offset(client, url)
    resp = client.patch(url, offset, PAYLOAD[offset:])
    assert resp.status == 204, resp.body
    got = client.request("GET", url, tus=False)
    assert got.status == 200
    assert hashlib.sha256(got.body).hexdigest() == hashlib.sha256(PAYLOAD).hexdigest()


def data_file(storage: Path, url: str) -> Path:
    return storage / id_of(url)


def stored_bytes(storage: Path, url: str) -> int:
    """Watch a PATCH land by the data file's size: a HEAD would take the upload over and end it."""
    return data_file(storage, url).stat().st_size


def test_client_disconnect_mid_patch_keeps_exactly_the_bytes_that_arrived(live_server: LiveServer) -> None:
    client = Client(live_server.url)
    url = client.create(len(PAYLOAD))
    sent = 3 * 1024 * 1024 + 17
    req = PartialRequest(url, "PATCH", patch_headers(0, len(PAYLOAD)))
    req.send(PAYLOAD[:sent])
    req.close()
    assert wait_until(lambda: head_offset(client, url) == sent), head_offset(client, url)
    assert data_file(live_server.storage_dir, url).read_bytes() == PAYLOAD[:sent]
    resume_and_verify(client, url)


def test_kill_9_mid_patch_then_restart_and_resume(tmp_path: Path) -> None:
    storage = tmp_path / "data"
    server = LiveServer(storage, "--max-size", str(1024**3)).start()
    try:
        client = Client(server.url)
        url = client.create(len(PAYLOAD))
        req = PartialRequest(url, "PATCH", patch_headers(0, len(PAYLOAD)))
        sent = 0
        for _ in range(5):  # bounded: 5 MiB in 1 MiB pieces
            req.send(PAYLOAD[sent : sent + 1024 * 1024])
            sent += 1024 * 1024
        assert wait_until(lambda: stored_bytes(storage, url) >= 1024 * 1024)
        server.kill()  # SIGKILL while the PATCH is still streaming
        req.close()
        on_disk = data_file(storage, url).read_bytes()
        assert PAYLOAD.startswith(on_disk), "bytes on disk are not a prefix of what was sent"
        server = LiveServer(storage, "--max-size", str(1024**3), port=server.port).start()
        offset = head_offset(client, url)
        assert 0 < offset <= len(on_disk) <= sent
        resume_and_verify(client, url)
    finally:
        server.stop()


def test_sigterm_mid_patch_keeps_written_bytes(tmp_path: Path) -> None:
    storage = tmp_path / "data"
    server = LiveServer(storage, "--shutdown-timeout", "1").start()
    try:
        client = Client(server.url)
        url = client.create(len(PAYLOAD))
        req = PartialRequest(url, "PATCH", patch_headers(0, len(PAYLOAD)))
        sent = 2 * 1024 * 1024 + 5
        req.send(PAYLOAD[:sent])
        assert wait_until(lambda: stored_bytes(storage, url) >= 1024 * 1024)
        assert server.stop(grace=15) is not None  # SIGTERM; the stalled PATCH is cut after 1 s
        req.close()
        stopped = [json.loads(line) for line in server.logs().splitlines() if '"stopped;' in line]
        assert [(entry["drained"], entry["cut"]) for entry in stopped] == [(0, 1)]  # the shutdown says what it cut
        server = LiveServer(storage, port=server.port).start()
        assert head_offset(client, url) == sent  # every byte that arrived was kept
        resume_and_verify(client, url)
    finally:
        server.stop()


def test_sigterm_mid_patch_drains_a_body_still_arriving(tmp_path: Path) -> None:
    """A rolling deploy: SIGTERM while a PATCH's body is still on its way. The server stops taking
    connections but reads the rest of that body within --shutdown-timeout and answers it (aiohttp
    on its own drops every byte that arrives once shutdown begins, so the request hung until cut)."""
    storage = tmp_path / "data"
    server = LiveServer(storage, "--shutdown-timeout", "20").start()
    process = server.process
    assert process is not None
    try:
        client = Client(server.url)
        url = client.create(len(PAYLOAD))
        req = PartialRequest(url, "PATCH", patch_headers(0, len(PAYLOAD)), timeout=30)
        first = 2 * 1024 * 1024 + 5
        req.send(PAYLOAD[:first])
        assert wait_until(lambda: stored_bytes(storage, url) >= 1024 * 1024)
        process.send_signal(signal.SIGTERM)
        assert wait_until(lambda: "shutting down" in server.logs(), timeout=10)
        req.send(PAYLOAD[first:])
        assert req.response_status(timeout=20) == 204
        req.close()
        assert process.wait(30) == 0
        stopped = [json.loads(line) for line in server.logs().splitlines() if '"stopped;' in line]
        assert [(entry["drained"], entry["cut"]) for entry in stopped] == [(1, 0)]
        assert data_file(storage, url).read_bytes() == PAYLOAD
    finally:
        server.stop()


def test_newer_patch_takes_over_a_stalled_one_without_corruption(live_server: LiveServer) -> None:
    client = Client(live_server.url)
    url = client.create(len(PAYLOAD))
    stalled = PartialRequest(url, "PATCH", patch_headers(0, len(PAYLOAD)))
    first = 1024 * 1024 + 3
    stalled.send(PAYLOAD[:first])
    # Less than one write batch is missing from disk: the handler has read all but the last one; the
    # rest is in its memory or the socket, and the takeover drains the socket before it lets go.
    assert wait_until(lambda: stored_bytes(live_server.storage_dir, url) > first - WRITE_BATCH)
    # The client believes the old connection is dead and retries from the offset it last saw (0).
    retry = client.patch(url, 0, PAYLOAD)
    assert retry.status == 409  # the stalled request let go, keeping its bytes: offset is now `first`
    assert retry.header("Upload-Offset") == str(first)  # and the 409 says where to resume
    assert head_offset(client, url) == first
    assert stalled.response_status() == 423  # the old request is told it was superseded
    stalled.close()
    resume_and_verify(client, url)


def test_head_takes_over_a_half_open_patch_and_reports_its_committed_offset(live_server: LiveServer) -> None:
    client = Client(live_server.url)
    url = client.create(len(PAYLOAD))
    half_open = PartialRequest(url, "PATCH", patch_headers(0, len(PAYLOAD)))
    sent = 2 * 1024 * 1024 + 9
    half_open.send(PAYLOAD[:sent])
    assert wait_until(lambda: stored_bytes(live_server.storage_dir, url) > 0)
    # The client resumes from another connection: HEAD ends the old PATCH, which commits every
    # byte it read (the last partial batch included), and reports exactly what is stored.
    offset = head_offset(client, url)
    assert 0 < offset <= sent
    assert offset == stored_bytes(live_server.storage_dir, url)
    assert half_open.response_status() == 423
    half_open.close()
    resume_and_verify(client, url)


def recording_status(client: Client, url: str) -> str:
    resp = client.request("GET", url.replace("/files/", "/api/recordings/"), tus=False)
    assert resp.status == 200, resp.body
    status = json.loads(resp.body)["status"]
    assert isinstance(status, str)
    return status


@pytest.mark.parametrize("kill_after", [0.0, 0.002, 0.005, 0.01, 0.02, 0.05])
def test_kill_9_around_the_last_byte_still_processes_the_upload(tmp_path: Path, kill_after: float) -> None:
    """Killed at any moment around the finish (storage's commit, then the pipeline's record): after
    a restart and the client's resume the bytes are intact and the recording reaches ``completed``."""
    storage = tmp_path / "data"
    small = PAYLOAD[: 2 * 1024 * 1024]
    server = LiveServer(storage, "--max-size", str(1024**3)).start()
    try:
        client = Client(server.url)
        url = client.create(len(small))
        req = PartialRequest(url, "PATCH", patch_headers(0, len(small)))
        req.send(small)  # every byte sent; the kill lands before, during or after the finish
        time.sleep(kill_after)  # where in the finish the kill lands: the variable under test, not a wait
        server.kill()
        req.close()
        server = LiveServer(storage, "--max-size", str(1024**3), port=server.port).start()
        offset = head_offset(client, url)
        if offset < len(small):
            assert client.patch(url, offset, small[offset:]).status == 204
        got = client.request("GET", url, tus=False)
        assert got.status == 200 and got.body == small
        assert wait_until(lambda: recording_status(client, url) == "completed", timeout=30), recording_status(
            client, url
        )
    finally:
        server.stop()
