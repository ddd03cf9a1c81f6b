"""The servers under test: how to start each one fresh on a loopback port, and how to stop it.

Every server is a child process of the benchmark, in its own process group, stopped by its PID
(SIGTERM, then SIGKILL after a grace period); an ``atexit`` hook kills any still running if the
benchmark itself dies.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
WORK = BENCH / ".work"
TUSPY_VENV = WORK / "tuspy-venv"
START_TIMEOUT = 60.0
STOP_GRACE = 10.0


@dataclass(frozen=True)
class S3Target:
    """Where S3 peers store: an S3 endpoint on 127.0.0.1 and a bucket that exists."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str
    part_size: int
    part_concurrency: int
    storage_pid: int = 0  # the SeaweedFS process, whose CPU time the report shows beside the server's


@dataclass(frozen=True)
class Peer:
    name: str
    backend: str  # "fs" or "s3"
    command: Callable[[int, Path, S3Target | None], list[str]]
    verify: str  # "get", "disk" (the stored file is <data dir>/<upload id>) or "none"
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    # "subject" (tusd-py), "variant" (tusd-py in another configuration, bench/scaleout.py), "peer",
    # "limit", "sink" or "direct" (a client, no server)
    role: str = "peer"

    def verify_mode(self, data_dir: Path) -> str:
        return f"disk:{data_dir}" if self.verify == "disk" else self.verify


def tusd_py_fs(port: int, data: Path, s3: S3Target | None) -> list[str]:
    return [
        str(REPO / ".venv/bin/python"),
        *("-m", "tusd_py", "serve", "--host", "127.0.0.1", "--port", str(port)),
        *("--storage-dir", str(data), "--log-format", "json", "--log-level", "warning"),
    ]


def tusd_py_s3(port: int, data: Path, s3: S3Target | None) -> list[str]:
    assert s3 is not None
    from s3env import tusd_py_s3_flags

    return [*tusd_py_fs(port, data, s3), *tusd_py_s3_flags(s3)]


def node_fs(port: int, data: Path, s3: S3Target | None) -> list[str]:
    return [
        "node",
        str(BENCH / "peers/tus_node_server.mjs"),
        "--port",
        str(port),
        "--store",
        "file",
        "--dir",
        str(data),
    ]


def node_s3(port: int, data: Path, s3: S3Target | None) -> list[str]:
    assert s3 is not None
    return [
        *("node", str(BENCH / "peers/tus_node_server.mjs"), "--port", str(port), "--store", "s3"),
        *("--endpoint", s3.endpoint, "--bucket", s3.bucket, "--region", s3.region),
        *("--access-key", s3.access_key, "--secret-key", s3.secret_key),
        # Part size and concurrency stay S3Store's defaults (8 MiB, 60 at once): what a user gets.
    ]


def tuspyserver(port: int, data: Path, s3: S3Target | None) -> list[str]:
    return [
        str(TUSPY_VENV / "bin/uvicorn"),
        *("tuspyserver_app:app", "--app-dir", str(BENCH / "peers"), "--host", "127.0.0.1", "--port", str(port)),
        *("--log-level", "warning", "--no-access-log"),
    ]


def append_limit(port: int, data: Path, s3: S3Target | None) -> list[str]:
    return [sys.executable, str(BENCH / "peers/append_limit.py"), "--port", str(port), "--dir", str(data)]


def append_simple(port: int, data: Path, s3: S3Target | None) -> list[str]:
    return [sys.executable, str(BENCH / "peers/append_simple.py"), "--port", str(port), "--dir", str(data)]


def s3_limit(port: int, data: Path, s3: S3Target | None) -> list[str]:
    """Not a server: the client itself (bench/peers/s3_limit.py), run by run.py instead of client.py."""
    assert s3 is not None
    return [
        *(sys.executable, str(BENCH / "peers/s3_limit.py"), "--endpoint", s3.endpoint, "--bucket", s3.bucket),
        *("--region", s3.region, "--part-size", str(s3.part_size), "--part-concurrency", str(s3.part_concurrency)),
    ]


def discard_sink(port: int, data: Path, s3: S3Target | None) -> list[str]:
    return [sys.executable, str(BENCH / "peers/discard_sink.py"), "--port", str(port)]


SINK = Peer("discard sink", "fs", discard_sink, "none", role="sink")
FS_PEERS = [
    Peer("tusd-py", "fs", tusd_py_fs, "get", role="subject"),
    Peer("@tus/server", "fs", node_fs, "get", cwd=BENCH),
    Peer("tuspyserver", "fs", tuspyserver, "disk"),
    Peer("limit", "fs", append_limit, "get", role="limit"),
    Peer("simple limit", "fs", append_simple, "get", role="limit"),
]
S3_PEERS = [
    Peer("tusd-py", "s3", tusd_py_s3, "get", role="subject"),
    Peer("@tus/s3-store", "s3", node_s3, "get", cwd=BENCH),
    Peer("S3 limit", "s3", s3_limit, "s3", role="direct"),  # aiobotocore straight to S3, no tus server
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_running: set[subprocess.Popen[bytes]] = set()


def _kill_all() -> None:
    for proc in list(_running):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)


atexit.register(_kill_all)


class RunningServer:
    def __init__(self, peer: Peer, data_dir: Path, log_path: Path, s3: S3Target | None) -> None:
        self.peer = peer
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/files/"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **peer.env, "TUSPYSERVER_DIR": str(data_dir)}
        if s3 is not None:
            from s3env import credentials_env

            env.update(credentials_env(s3))
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                peer.command(self.port, data_dir, s3),
                cwd=peer.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _running.add(self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self) -> None:
        """Until OPTIONS on the collection answers (any status), the process dies, or the deadline."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.peer.name} exited with {self.proc.returncode}: {self.log_tail()}")
            request = urllib.request.Request(self.url, method="OPTIONS", headers={"Tus-Resumable": "1.0.0"})
            try:
                with urllib.request.urlopen(request, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answered: it is up
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.peer.name} did not answer within {START_TIMEOUT:g} s: {self.log_tail()}")

    def refusal(self) -> str | None:
        """``refused: <reason>`` when the server exited with 2 (tusd-py's start-up refusal) and printed
        its one-line reason ("tusd-py: cannot start: ..." or "tusd-py: invalid configuration: ...")."""
        if self.proc.poll() != 2:
            return None
        with contextlib.suppress(OSError):
            for line in reversed(self.log_path.read_text(errors="replace").splitlines()):
                if line.startswith("tusd-py: "):
                    return "refused: " + line.removeprefix("tusd-py: ").removeprefix("cannot start: ")
        return None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_GRACE)
        _running.discard(self.proc)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return ""
        return " | ".join(text[-lines:])
