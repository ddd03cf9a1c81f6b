"""``tusd-py serve --processes 2`` as an operator runs it (the real CLI, Redis and PostgreSQL): it
serves on one port, a killed worker is restarted while the other keeps serving, /metrics is one
view over both workers, and SIGTERM drains a PATCH in flight before the command exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from conformance.client import Client
from conformance.live_server import LiveServer
from conformance.postgres_server import PostgresServer
from tests.telemetry.scrape import parse, value

T = TypeVar("T")

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]


def _workers(supervisor: int) -> set[int]:
    """The supervisor's worker processes (multiprocessing's resource tracker is a child too)."""
    found = set()
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                found.add(int(child))
    return found


def _gone(pid: int) -> bool:
    """Dead: no /proc entry, or a zombie waiting for its parent's wait()."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return parse(resp.read().decode())


def _options(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/files/", method="OPTIONS")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status


def _retrying(call: Callable[[], T], attempts: int = 5) -> T:
    """``call()``, retried after a reset connection (bounded), as a tus client retries."""
    for _ in range(attempts - 1):
        try:
            return call()
        except (ConnectionError, urllib.error.URLError):
            time.sleep(0.2)
    return call()


def _log_events(server: LiveServer) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]


@pytest.fixture
def two_processes(tmp_path: Path, redis_url: str, postgres: PostgresServer) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path / "data",
        "--processes", "2",
        "--redis-url", redis_url,
        "--database-url", postgres.create_database(),
        "--download-signing-key", "k" * 32,
        "--shutdown-timeout", "2",
    )  # fmt: skip
    server.start(timeout=90)  # one worker answers /healthz; the supervisor says "serving" once all do
    try:
        assert _wait_until(lambda: any(e.get("event") == "serving" and "pids" in e for e in _log_events(server)))
        yield server
    finally:
        server.stop(grace=40)


def test_two_workers_serve_one_port_and_metrics_are_one_view(two_processes: LiveServer) -> None:
    assert two_processes.process is not None
    assert _wait_until(lambda: len(_workers(two_processes.process.pid)) == 2)  # type: ignore[union-attr]
    before = value(_scrape(two_processes.port), "tusd_requests_total", method="OPTIONS")
    for _ in range(20):  # one connection each: the kernel spreads them over both workers' sockets
        assert _options(two_processes.port) == 204
    # Whichever worker answers the scrape, it counts the requests of both.
    for _ in range(6):
        assert value(_scrape(two_processes.port), "tusd_requests_total", method="OPTIONS") == before + 20
    served = {event.get("pid") for event in _log_events(two_processes) if event.get("event") == "worker serving"}
    assert len(served) == 2


def test_a_killed_worker_is_restarted_while_the_other_serves(two_processes: LiveServer) -> None:
    supervisor = two_processes.process.pid  # type: ignore[union-attr]
    assert _wait_until(lambda: len(_workers(supervisor)) == 2)
    first = _workers(supervisor)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    assert _wait_until(lambda: _gone(victim))
    # Connections the kernel had queued on the dead worker's socket are reset, as with any crash
    # (and a few were reset around the restart on this machine): a client retries, as tus
    # clients do, and the upload goes through while the slot is restarted.
    client = Client(two_processes.url)
    url = _retrying(lambda: client.create(3))
    assert _retrying(lambda: client.patch(url, 0, b"abc").status) == 204
    assert _wait_until(lambda: len(_workers(supervisor)) == 2 and victim not in _workers(supervisor))
    died = [e for e in _log_events(two_processes) if e.get("event") == "worker died; restarting it"]
    assert [e["pid"] for e in died] == [victim]
    assert _wait_until(lambda: value(_scrape(two_processes.port), "tusd_py_worker_restarts_total") == 1)
    for _ in range(10):
        assert _retrying(lambda: _options(two_processes.port)) == 204


def test_a_second_server_on_the_port_is_refused(two_processes: LiveServer, tmp_path: Path) -> None:
    """SO_REUSEPORT would let a second --processes server join the port's group silently."""
    done = subprocess.run(
        [
            sys.executable, "-m", "tusd_py", "serve", "--host", "127.0.0.1", "--port", str(two_processes.port),
            "--storage-dir", str(tmp_path / "other"), "--processes", "2",
            "--redis-url", "redis://127.0.0.1:1/0", "--database-url", "postgresql://127.0.0.1:1/x",
            "--download-signing-key", "k" * 32,
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{two_processes.port}: the address is already in use" in done.stderr


def test_sigterm_drains_every_worker_and_exits_zero(two_processes: LiveServer) -> None:
    """SIGTERM reaches every worker; each drains within --shutdown-timeout (a PATCH stalled past it
    is cut and keeps the bytes that arrived, as in one process); the command exits 0, its workers
    are gone and the run's metrics directory is deleted."""
    supervisor = two_processes.process
    assert supervisor is not None
    assert _wait_until(lambda: len(_workers(supervisor.pid)) == 2)
    workers = _workers(supervisor.pid)
    client = Client(two_processes.url)
    url = client.create(8)
    path = url.split(f":{two_processes.port}", 1)[1]
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        "Content-Type: application/offset+octet-stream\r\nContent-Length: 8\r\nConnection: close\r\n\r\n"
    )
    data = two_processes.storage_dir / path.rsplit("/", 1)[1]
    with socket.create_connection(("127.0.0.1", two_processes.port), timeout=30) as sock:
        sock.sendall(head.encode() + b"1234")
        assert _wait_until(lambda: '"path": "' + path + '"' in two_processes.logs() or data.exists(), timeout=10)
        os.kill(supervisor.pid, signal.SIGTERM)
        assert supervisor.wait(60) == 0
    assert all(_gone(pid) for pid in workers)
    events = _log_events(two_processes)
    stopped = [e for e in events if e.get("event") == "stopped; every worker exited"]
    assert stopped and stopped[0]["killed"] == 0
    worker_reports = [
        (e["drained"], e["cut"]) for e in events if str(e.get("event", "")).startswith("stopped; ") and "cut" in e
    ]
    assert sorted(worker_reports) == [(0, 0), (0, 1)]  # the idle worker, and the one holding the PATCH
    assert data.stat().st_size == 4  # the cut PATCH kept what arrived
    serving = next(e for e in events if e.get("event") == "serving" and "metrics_dir" in e)
    assert not Path(str(serving["metrics_dir"])).exists()
