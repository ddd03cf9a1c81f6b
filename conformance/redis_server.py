"""A real Redis for tests and benchmarks: Debian's ``redis-server`` on a free loopback port.

Nothing is persisted (``--save '' --appendonly no``): a restart starts empty, which is what the
lock tests want to survive. Started and stopped by PID; :meth:`RedisServer.restart` keeps the
port, so clients that reconnect find it again.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from conformance.live_server import free_port, stop_by_pid

START_TIMEOUT = 15.0
STOP_GRACE = 5.0


def find_redis_server() -> str | None:
    """The ``redis-server`` binary of Debian's redis-server package."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )


@dataclass
class RedisServer:
    """One ``redis-server``; use as a context manager. ``url`` is what ``--redis-url`` takes."""

    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = find_redis_server()
        if binary is None:
            raise RuntimeError("redis-server (Debian package redis-server) was not found")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - handed to the child
        # fmt: off
        args = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.directory), "--daemonize", "no", "--protected-mode", "yes",
        ]
        # fmt: on
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.directory}")
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT:g} s")

    def ping(self) -> bool:
        """True if the server answers PING (inline command) right now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; by PID."""
        process, self.process = self.process, None
        if process is None:
            return
        stop_by_pid(process, signal.SIGTERM, STOP_GRACE)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds, start again on the same port (empty)."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
