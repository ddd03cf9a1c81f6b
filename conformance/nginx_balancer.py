"""nginx (Debian's /usr/sbin/nginx) as a round-robin balancer on a free 127.0.0.1 port, stopped by PID.

It serves the reference configuration shipped in docs/deployment/nginx-tusd-py.conf, rendered
with only two changes: the upstream's ``server`` lines become the given instances and the
``listen`` line the free port. Around it, a main configuration of its own in a temporary
directory: pid file, error and access logs and every temp path there, one worker process, and
``daemon off`` so that the PID we start is the master we stop. As root, nginx's workers would
switch to ``nobody``, who cannot enter pytest's 0700 temp directories: they stay the current user.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from conformance.live_server import free_port

REFERENCE_CONF = Path(__file__).resolve().parent.parent / "docs" / "deployment" / "nginx-tusd-py.conf"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx")
START_TIMEOUT = 20.0

_UPSTREAM_SERVER = re.compile(r"^(\s*)server \S+( [^;]*)?;\n", re.MULTILINE)
_LISTEN = re.compile(r"^(\s*)listen \S+;", re.MULTILINE)
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def find_nginx() -> str | None:
    for candidate in NGINX_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("nginx")


def render_reference(upstreams: list[str], port: int, text: str | None = None) -> str:
    """The shipped configuration with these upstream ``host:port`` servers, listening on 127.0.0.1:port."""
    text = REFERENCE_CONF.read_text() if text is None else text
    servers = list(_UPSTREAM_SERVER.finditer(text))
    listens = list(_LISTEN.finditer(text))
    if not servers or len(listens) != 1:
        raise ValueError(f"{REFERENCE_CONF}: expected upstream server lines and one listen line")
    first, last = servers[0], servers[-1]
    indent, options = first.group(1), first.group(2) or ""
    lines = "".join(f"{indent}server {address}{options};\n" for address in upstreams)
    text = text[: first.start()] + lines + text[last.end() :]
    return _LISTEN.sub(lambda m: f"{m.group(1)}listen 127.0.0.1:{port};", text, count=1)


class NginxBalancer:
    """``with NginxBalancer(["127.0.0.1:8001", ...], workdir) as lb: lb.url`` (the tus collection URL)."""

    def __init__(
        self, upstreams: list[str], workdir: str | Path, *, port: int | None = None, reference: str | None = None
    ) -> None:
        binary = find_nginx()
        if binary is None:
            raise RuntimeError("nginx is not installed (Debian package nginx; make test installs it)")
        self.binary = binary
        self.upstreams = list(upstreams)
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.reference = reference  # None: the shipped file; a variant's text for tests that change a setting
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/files/"

    @property
    def error_log(self) -> Path:
        return self.workdir / "error.log"

    def main_conf(self) -> str:
        temp = "\n".join(f"    {name}_temp_path {self.workdir / (name + '_temp')};" for name in _TEMP_PATHS)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return (
            f"{user}worker_processes 1;\n"
            f"pid {self.workdir / 'nginx.pid'};\n"
            f"error_log {self.error_log} warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"    access_log {self.workdir / 'access.log'};\n"
            f"{temp}\n"
            f"    include {self.workdir / 'tusd-py.conf'};\n"
            "}\n"
        )

    def start(self) -> NginxBalancer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tusd-py.conf").write_text(render_reference(self.upstreams, self.port, self.reference))
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.main_conf())
        command = [self.binary, "-p", str(self.workdir), "-e", str(self.error_log), "-c", str(conf)]
        check = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True, timeout=30, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused the configuration: {check.stderr.strip()}")
        out = open(self.workdir / "nginx.out", "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self._out = out
        self.process = subprocess.Popen([*command, "-g", "daemon off;"], stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}: {self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen within {START_TIMEOUT:g} s: {self.logs()}")

    def stop(self) -> None:
        """SIGQUIT (graceful), then SIGTERM (fast), then SIGKILL to the master's process group.

        The master runs in a session of its own, so the last resort also reaches its workers,
        which a SIGKILL of the master alone would leave running on the port.
        """
        proc = self.process
        if proc is None:
            return
        for sig, grace in ((signal.SIGQUIT, 10.0), (signal.SIGTERM, 5.0)):
            if proc.poll() is not None:
                break
            os.kill(proc.pid, sig)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        self._out.close()
        self.process = None

    def logs(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def __enter__(self) -> NginxBalancer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
