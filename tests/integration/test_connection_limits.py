"""Connection exhaustion and log hygiene on the real CLI server, with a low open-file limit.

The server child gets RLIMIT_NOFILE 256/256, so a few hundred idle sockets from this process
are enough to reach what used to be "socket.accept() out of system resource" every second.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conformance.client import OCTET, TUS, Client
from conformance.live_server import LiveServer
from tests.client.raw import PartialRequest
from tests.client.wait import wait_until

pytestmark = pytest.mark.slow

FILE_LIMIT = 256


def low_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


def limited_server(tmp_path: Path, *args: str) -> LiveServer:
    return LiveServer(tmp_path / "data", *args, preexec_fn=low_file_limit).start()


@contextmanager
def idle_connections(port: int, count: int, *, wait: bool = True) -> Iterator[list[socket.socket]]:
    """``wait=False``: stop at the first connection the server's backlog has no room for."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            try:
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=5 if wait else 0.5))
            except TimeoutError:
                if wait:
                    raise
                break
        yield socks
    finally:
        for sock in socks:
            sock.close()


def status_of(url: str, timeout: float = 5) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def events(server: LiveServer) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.logs().splitlines() if line.strip()]


def test_idle_connections_past_the_file_limit_get_a_prompt_503_and_service_recovers(tmp_path: Path) -> None:
    server = limited_server(tmp_path, "--header-timeout", "60")
    try:
        (limit,) = [e for e in events(server) if e["event"] == "open-file limit"]
        assert limit["soft"] == FILE_LIMIT and limit["max_connections"] == FILE_LIMIT * 3 // 4
        health = f"http://127.0.0.1:{server.port}/healthz"
        with idle_connections(server.port, FILE_LIMIT + 50):
            started = time.monotonic()
            assert status_of(health) == 503
            assert time.monotonic() - started < 3
        assert wait_until(lambda: status_of(health) == 200, timeout=10)
    finally:
        server.stop()
    log = server.logs()
    assert "out of system resource" not in log
    refusals = [e for e in events(server) if e["event"].startswith("connection limit reached")]  # type: ignore[union-attr]
    # More than a hundred refusals: one line, then one with the count (written at exit).
    assert len(refusals) == 2, refusals
    assert "repeated" not in refusals[0] and int(refusals[1]["repeated"]) >= 50  # type: ignore[call-overload]


def test_accept_failing_with_emfile_is_logged_once_with_a_count(tmp_path: Path) -> None:
    # A cap above the file limit on purpose: accept() now fails, as it did for everyone before.
    server = limited_server(tmp_path, "--max-connections", "1000", "--header-timeout", "60")
    try:
        with idle_connections(server.port, FILE_LIMIT + 50, wait=False):
            assert wait_until(lambda: "out of system resource" in server.logs(), timeout=10)
            time.sleep(3.5)  # asyncio retries accept() every second: several failures
        assert wait_until(lambda: status_of(f"http://127.0.0.1:{server.port}/healthz") == 200, timeout=10)
    finally:
        server.stop()
    lines = [e for e in events(server) if "out of system resource" in str(e["event"])]
    assert len(lines) == 2, lines  # the first, with its traceback, then one summary
    assert "Too many open files" in str(lines[0]["exception"])
    assert int(lines[1]["repeated"]) >= 2 and "exception" not in lines[1]  # type: ignore[call-overload]


def test_slow_headers_are_cut_and_idle_keepalive_closes_on_the_flags(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", "--header-timeout", "1", "--keepalive-timeout", "2").start()
    try:
        drip = PartialRequest(server.url, "OPTIONS", {})  # headers sent, blank line never
        drip.sock.close()
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow.sendall(b"OPTIONS /files/ HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        answer = slow.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert 0.8 < time.monotonic() - started < 4
        slow.close()

        kept = socket.create_connection(("127.0.0.1", server.port), timeout=6)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")
        served = time.monotonic()
        assert kept.recv(4096) == b""  # closed by the server while idle
        assert 1.5 < time.monotonic() - served < 5  # the keep-alive timeout, not the header one
        kept.close()
    finally:
        server.stop()


def test_every_server_line_is_json_through_takeovers_and_disconnects(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data").start()
    try:
        client = Client(server.url)
        size = 4 * 1024 * 1024
        url = client.create(size)
        patch = {**TUS, **OCTET, "Upload-Offset": "0", "Content-Length": str(size)}
        cut = PartialRequest(url, "PATCH", patch)  # a PATCH taken over by a newer HEAD
        cut.send(os.urandom(100_000))
        time.sleep(0.3)
        assert client.head(url).status == 200
        assert cut.response_status() == 423
        cut.close()
        offset = int(client.head(url).header("Upload-Offset") or -1)
        gone = PartialRequest(
            url, "PATCH", {**patch, "Upload-Offset": str(offset), "Content-Length": str(size - offset)}
        )
        gone.send(os.urandom(100_000))  # then the client vanishes mid-PATCH
        time.sleep(0.2)
        gone.close()
        assert wait_until(lambda: int(client.head(url).header("Upload-Offset") or -1) == offset + 100_000)
        offset = int(client.head(url).header("Upload-Offset") or -1)
        assert client.patch(url, offset, os.urandom(size - offset)).status == 204
        path = url.split(str(server.port), 1)[1]
        for _ in range(3):  # and a client vanishing mid-GET, with a reset
            reader = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            reader.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            reader.recv(1000)
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            reader.close()
        time.sleep(0.5)
    finally:
        server.stop()
    lines = [line for line in server.logs().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # raises on any traceback or bare text line
    assert any(e["event"] == "body ended early" for e in parsed)
    library_errors = [e for e in parsed if "logger" in e and e["level"] in ("error", "critical")]
    assert library_errors == []
