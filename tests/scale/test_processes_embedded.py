"""``tusd-py serve --processes 2`` on the embedded default (no Redis, no PostgreSQL), the real CLI:
the workers share upload locks and the quota ledger through the supervisor's host service and
recordings and jobs through the SQLite file. The guarantees of one process hold across workers:
a worker killed mid-PATCH (the upload resumes through another, every byte once), two clients
racing on one upload from different workers (never interleaved; the newer wins once the older
stalls), a user's quota raced from both workers, each finished upload processed once."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import urllib.error
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance.client import Client, Response
from conformance.live_server import LiveServer
from tests.scale.test_processes_live import _gone, _log_events, _retrying, _wait_until, _workers
from tests.tokens import SECRET, bearer

pytestmark = pytest.mark.slow

ALICE = bearer("alice", ttl=24 * 3600)


def _start(tmp_path: Path, *extra: str) -> LiveServer:
    server = LiveServer(
        tmp_path / "data", "--processes", "2", "--shutdown-timeout", "2", "--jwt-secret", SECRET, *extra
    )  # fmt: skip
    server.start(timeout=90)
    assert _wait_until(lambda: any(e.get("event") == "serving" and "pids" in e for e in _log_events(server)))
    return server


def _answers(server: LiveServer, method: str, path: str) -> list[tuple[str, int]]:
    """(worker, status) of each logged request: a worker's request ids share a prefix of its own."""
    return [
        (str(e["request_id"])[:8], int(str(e["status"])))
        for e in _log_events(server)
        if e.get("event") == "request" and e.get("method") == method and e.get("path") == path
    ]


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[LiveServer]:
    server = _start(tmp_path, "--lock-timeout", "5")
    try:
        yield server
    finally:
        server.stop(grace=40)


def _client(server: LiveServer) -> Client:
    return Client(server.url, extra_headers=ALICE)


def _open_patch(server: LiveServer, path: str, offset: int, length: int, first: bytes) -> socket.socket:
    """A PATCH whose body is sent in part: the rest (or nothing) follows when the test says."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n"
        f"Authorization: {ALICE['Authorization']}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + first)
    return sock


def _status(sock: socket.socket) -> int:
    """The status line of the answer (0 if the connection closed without one)."""
    try:
        line = sock.makefile("rb").readline()
    except OSError:
        return 0
    return int(line.split()[1]) if line.startswith(b"HTTP/1.1") else 0


def _holding(supervisor: int, data: Path) -> int | None:
    """The worker that has the upload's data file open (writing its PATCH)."""
    for pid in _workers(supervisor):
        try:
            if any(os.readlink(fd) == str(data) for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
        except (FileNotFoundError, PermissionError):
            continue
    return None


def test_a_worker_killed_mid_patch_and_the_upload_resumed_through_another(embedded: LiveServer) -> None:
    supervisor = embedded.process.pid  # type: ignore[union-attr]
    assert _wait_until(lambda: len(_workers(supervisor)) == 2)
    payload = os.urandom(2 * 1024 * 1024)
    client = _client(embedded)
    url = client.create(len(payload))
    path = url.split(f":{embedded.port}", 1)[1]
    data = embedded.storage_dir / path.rsplit("/", 1)[1]
    # More than a write batch (512 KiB) sent, the rest held back: the body stalls mid-PATCH.
    sock = _open_patch(embedded, path, 0, len(payload), payload[: 1536 * 1024])
    try:
        assert _wait_until(lambda: data.exists() and data.stat().st_size >= 1024 * 1024, timeout=20)
        victim = _holding(supervisor, data)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)  # mid-PATCH, holding the upload's lock
        assert _wait_until(lambda: _gone(victim))
    finally:
        sock.close()
    # Its lock went with its connection to the host service: the resume is not kept waiting.
    offset = int(_retrying(lambda: client.head(url)).header("Upload-Offset") or "-1")
    assert offset == data.stat().st_size >= 1024 * 1024  # what reached the file before the kill
    done = _retrying(lambda: client.patch(url, offset, payload[offset:]))
    assert done.status == 204, done.body
    assert data.read_bytes() == payload  # every byte once, in order
    assert _wait_until(lambda: len(_workers(supervisor)) == 2 and victim not in _workers(supervisor))


def test_two_clients_racing_on_one_upload_from_different_workers(embedded: LiveServer) -> None:
    """The older PATCH stalls half-way; the client resumes on a new connection as tus clients do:
    its HEAD asks the holder to let go (the holder commits what arrived and answers 423) and
    learns the offset, its PATCH continues from there: the bytes in order, each once. Repeated
    until the older PATCH and the HEAD were served by different workers (the kernel spreads
    connections over both sockets)."""
    supervisor = embedded.process.pid  # type: ignore[union-attr]
    client = _client(embedded)
    crossed = 0
    for _ in range(12):
        payload = os.urandom(64 * 1024)
        url = client.create(len(payload))
        path = url.split(f":{embedded.port}", 1)[1]
        data = embedded.storage_dir / path.rsplit("/", 1)[1]
        older = _open_patch(embedded, path, 0, len(payload), payload[:20_000])
        try:
            assert _wait_until(lambda: _holding(supervisor, data) is not None, timeout=20)  # noqa: B023
            offset = int(client.head(url).header("Upload-Offset") or "-1")
            assert offset == 20_000  # the older request let go and kept what arrived
            assert client.patch(url, offset, payload[offset:]).status == 204
            assert _status(older) in (423, 0)  # handed over (0: closed once answered)
        finally:
            older.close()
        assert data.read_bytes() == payload
        assert _wait_until(lambda: len(_answers(embedded, "PATCH", path)) == 2)  # noqa: B023
        patches = _answers(embedded, "PATCH", path)
        assert sorted(status for _, status in patches) == [204, 423]
        heads = _answers(embedded, "HEAD", path)
        crossed += heads[0][0] != next(worker for worker, status in patches if status == 423)
        if crossed >= 2:
            break
    assert crossed >= 2, "the kernel never spread the two requests over both workers"


def test_concurrent_patches_on_one_upload_never_interleave(embedded: LiveServer) -> None:
    """Two full PATCHes at offset 0 at once, different bytes: one lands whole, the other is
    refused (409 once the first committed, or 423), whichever worker serves which."""
    client = _client(embedded)
    size = 96 * 1024
    for _ in range(6):
        url = client.create(size)
        bodies = [b"a" * size, b"b" * size]
        with ThreadPoolExecutor(2) as pool:
            answers: list[Response] = list(pool.map(lambda body: client.patch(url, 0, body), bodies))  # noqa: B023
        statuses = sorted(answer.status for answer in answers)
        assert statuses[0] == 204 and statuses[1] in (409, 423), statuses
        stored = (embedded.storage_dir / url.rsplit("/", 1)[1]).read_bytes()
        assert stored in bodies


@pytest.fixture
def with_quota(tmp_path: Path) -> Iterator[LiveServer]:
    server = _start(tmp_path, "--quota-bytes", "10000", "--quota-unfinished", "5")
    try:
        yield server
    finally:
        server.stop(grace=40)


def test_a_users_quota_raced_from_both_workers(with_quota: LiveServer) -> None:
    """30 creations at once per user, spread over both workers: exactly as many as the quota holds."""

    def create(user: str, length: int) -> int:
        client = Client(with_quota.url, extra_headers=bearer(user, ttl=24 * 3600))
        try:
            return client.request("POST", headers={"Upload-Length": str(length)}, body=b"").status
        except (ConnectionError, urllib.error.URLError):
            return 0

    with ThreadPoolExecutor(10) as pool:  # the unfinished-uploads limit (5) binds
        statuses = list(pool.map(lambda _: create("alice", 100), range(30)))
    assert statuses.count(201) == 5 and statuses.count(413) == 25, statuses
    with ThreadPoolExecutor(10) as pool:  # the byte limit binds: 3 x 3000 <= 10,000 < 4 x 3000
        statuses = list(pool.map(lambda _: create("bob", 3000), range(30)))
    assert statuses.count(201) == 3 and statuses.count(413) == 27, statuses
    posts = _answers(with_quota, "POST", "/files/")
    assert len({worker for worker, _ in posts}) == 2  # both workers took part


def test_each_finished_upload_is_processed_once(embedded: LiveServer, tmp_path: Path) -> None:
    count = 24
    clients = [Client(embedded.url, extra_headers=bearer(f"user{n}", ttl=24 * 3600)) for n in range(count)]

    def upload(n: int) -> str:
        url = clients[n].create(400)
        assert clients[n].patch(url, 0, os.urandom(400)).status == 204
        return url.rsplit("/", 1)[1]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(upload, range(count)))
    state = tmp_path / "data" / "state.sqlite3"

    def jobs() -> list[tuple[str, str, int]]:
        with sqlite3.connect(state) as db:
            return list(db.execute("SELECT upload_id, status, attempts FROM jobs"))

    assert _wait_until(lambda: sorted(s for _, s, _ in jobs()) == ["done"] * count, timeout=60)
    assert sorted(upload_id for upload_id, _, _ in jobs()) == sorted(ids)
    assert {attempts for _, _, attempts in jobs()} == {1}
    started = [str(e["upload_id"]) for e in _log_events(embedded) if e.get("event") == "job started"]
    assert sorted(started) == sorted(ids)  # each claimed by exactly one worker, once
    finishes = [e for e in _log_events(embedded) if e.get("event") == "upload finished"]
    assert len({str(e["request_id"])[:8] for e in finishes}) == 2  # uploads finished on both workers
