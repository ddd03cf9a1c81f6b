"""A real PostgreSQL for tests and benchmarks: Debian's server binaries, initdb + pg_ctl, loopback only.

The cluster lives in a temporary directory and listens on a free 127.0.0.1 port (no Unix socket
in a shared place, so several suites can run their own). initdb refuses to run as root, so when
the euid is 0 every server command runs as the ``postgres`` user (``runuser -u postgres --``) in
a directory made with :func:`tempfile.mkdtemp` under /tmp and chowned to it; pytest's own temp
directories are 0700 and unreadable to that user. Authentication is ``trust`` on loopback: the
cluster holds test data only and accepts no other address.

``stop()`` runs ``pg_ctl stop -m fast`` and, if the postmaster outlives it, kills it by PID.
:meth:`PostgresServer.restart` (stop + start on the same port and data) is what the outage tests use.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

# Debian installs each major version's server binaries in /usr/lib/postgresql/<major>/bin.
PG_LIB = Path("/usr/lib/postgresql")
START_TIMEOUT = 60.0
SERVICE_USER = "postgres"


def _major(directory: Path) -> int:
    name = directory.parent.name
    return int(name) if name.isdigit() else -1


def find_pg_bin(root: Path = PG_LIB) -> Path | None:
    """The directory holding initdb and pg_ctl (Debian's postgresql package, the newest installed
    major version, whichever it is), else the one on PATH, else None."""
    found_dirs = sorted(root.glob("*/bin"), key=_major, reverse=True) if root.is_dir() else []
    for directory in found_dirs:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """One PostgreSQL cluster; use as a context manager. ``url(db)`` gives a connection URL."""

    bin_dir: Path
    port: int = 0
    directory: Path | None = None
    user: str = "tusd"
    #: Extra server settings (``name=value``), e.g. ``shared_preload_libraries=pg_stat_statements``.
    settings: tuple[str, ...] = ()

    @property
    def data_dir(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        assert self.directory is not None
        return self.directory / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _as_service_user(self, args: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return args
        return ["runuser", "-u", SERVICE_USER, "--", *args]

    def _run(self, args: list[str], timeout: float = START_TIMEOUT) -> None:
        done = subprocess.run(
            self._as_service_user(args), capture_output=True, timeout=timeout, cwd=self.directory, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")

    def start(self) -> None:
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="tusd-pg-", dir="/tmp"))
            if os.geteuid() == 0:
                entry = pwd.getpwnam(SERVICE_USER)
                os.chown(self.directory, entry.pw_uid, entry.pw_gid)
            self._run(
                [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth=trust",
                 "--no-sync", "-E", "UTF8", "--locale=C"]
            )  # fmt: skip
        if not self.port:
            self.port = _free_port()
        # fsync off: test data, and the machine is shared; durability is PostgreSQL's own concern.
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k '' -c fsync=off -c max_connections=200"
        options += "".join(f" -c {setting}" for setting in self.settings)
        self._run(
            [str(self.bin_dir / "pg_ctl"), "start", "-w", "-t", str(int(START_TIMEOUT)), "-D", str(self.data_dir),
             "-l", str(self.log_file), "-o", options]
        )  # fmt: skip

    def pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self.directory is None or not self.data_dir.exists():
            return
        pid = self.pid()
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run([str(self.bin_dir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data_dir)], 30)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 0)
                os.kill(pid, signal.SIGKILL)  # still alive after pg_ctl stop: end it by PID

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        if down_for:
            time.sleep(down_for)
        self.start()

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its URL."""
        name = name or "t_" + secrets.token_hex(6)
        self._run([str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name])
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()
