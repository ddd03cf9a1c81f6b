"""Start a tusd-py server as a child process on a free loopback port, and stop it by PID.

Used by the conformance self-test, the integration tests (crash, disconnect, shutdown) and the
benchmarks, so all of them run the real CLI exactly as an operator would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType


def stop_by_pid(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
    """Send ``sig`` to a test server by PID, then SIGKILL if it is still there after ``grace`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, sig)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(
        self,
        storage_dir: str | Path,
        *extra_args: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        log_path: str | Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.storage_dir = Path(storage_dir)
        self.port = port or free_port()
        self.extra_args = extra_args
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(log_path) if log_path else self.storage_dir.parent / f"server-{self.port}.log"
        self.preexec_fn = preexec_fn  # runs in the child before exec, e.g. to lower its rlimits
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/files/"

    def start(self, timeout: float = 20.0) -> LiveServer:
        command = [
            sys.executable, "-m", "tusd_py", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--storage-dir", str(self.storage_dir), "--log-format", "json",
            *self.extra_args,
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self.process = subprocess.Popen(command, stdout=log, stderr=log, env=self.env, preexec_fn=self.preexec_fn)
        self._log = log
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not answer within {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        self._signal(signal.SIGKILL, 5)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        return self._signal(signal.SIGTERM, grace)

    def _signal(self, sig: int, grace: float) -> int | None:
        proc = self.process
        if proc is None:
            return None
        stop_by_pid(proc, sig, grace)
        self._log.close()
        self.process = None
        return proc.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()
