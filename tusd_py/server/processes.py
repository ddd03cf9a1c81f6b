"""``--processes N``: N worker processes serving one port, supervised by the parent process.

One Python process uses one core. Each worker here is a whole server (``serving.run_server``)
with its own listening socket on the same port (SO_REUSEPORT: the kernel spreads new connections
over the sockets). Workers share nothing in memory, so whatever must be shared lives outside:

- upload locks: in Redis with ``--redis-url``; otherwise in the parent's host service
  (tusd_py/host/: a thread serving a UNIX socket in the run's private directory), which keeps the
  in-process locker's semantics with fencing tokens and a liveness lease per worker;
- recordings, jobs and quotas: in PostgreSQL with ``--database-url``; otherwise recordings and
  jobs in the SQLite state file in WAL mode, shared by the workers, jobs claimed with a lease
  (tusd_py/pipeline/sqlite_leases.py), and the quota ledger in the host service;
- the signed-link key: ``--download-signing-key`` or one derived from ``--jwt-secret``; otherwise
  (one host, no Redis) the parent makes one per run and hands it to every worker.

The parent serves no request. It

- starts the workers with multiprocessing's "spawn" (a fresh interpreter each: no event loop,
  socket or lock is inherited half-used from a fork) and waits until each says it is serving;
  if one cannot start, it stops the others and exits with that worker's status (2 for a
  start-up refusal, whose one-line reason the worker printed);
- restarts a worker that dies, after a delay doubling from RESTART_DELAY up to MAX_RESTART_DELAY
  for that slot (back to the first step once a worker served for STABLE_AFTER seconds), so a
  crash loop costs a little CPU, not all of it;
- on SIGTERM or SIGINT passes SIGTERM to every worker, each of which drains its requests within
  ``--shutdown-timeout``; a worker still running DRAIN_MARGIN seconds after that is killed;
  the parent then exits 0;
- runs the host service for the workers (started before them, stopped after them);
- gives ``/metrics`` one view over all workers: prometheus_client's multiprocess mode, with a
  directory of its own per run in ``PROMETHEUS_MULTIPROC_DIR`` (set before any worker starts,
  deleted at exit), and the live gauges of a dead worker removed, so any worker answers a scrape
  for all of them.

A worker watches its parent: if the parent is gone (killed with SIGKILL), the worker stops as on
SIGTERM rather than holding the port forever.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING

import msgspec
import structlog

from tusd_py.config.refusals import signing_key_refusal
from tusd_py.config.values import Config
from tusd_py.server.serving import refuse_start
from tusd_py.server.startup import ListenError

if TYPE_CHECKING:
    from tusd_py.host.service import HostServiceThread

log = structlog.get_logger("tusd_py.server.processes")

RESTART_DELAY = 0.5  # seconds before the first restart of a slot's worker
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0  # a worker that served this long resets its slot's restart delay
DRAIN_MARGIN = 5.0  # beyond --shutdown-timeout before a draining worker is killed
START_TIMEOUT = 120.0  # for the first start of every worker (storage checks, migrations)
PARENT_WATCH_INTERVAL = 1.0


def restart_delay(failures: int) -> float:
    """Seconds before restarting a worker of a slot that failed ``failures`` times in a row (>= 1)."""
    return float(min(MAX_RESTART_DELAY, RESTART_DELAY * 2 ** max(0, failures - 1)))


@dataclass(eq=False)
class _Slot:
    index: int
    process: BaseProcess | None = None
    ready: Connection | None = None  # the worker sends its pid once serving, then closes
    serving: bool = False
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None


def serve_processes(config: Config) -> int:
    """Run ``config.processes`` supervised workers until SIGTERM; the exit status of the command."""
    refusal = signing_key_refusal(config)
    if refusal is not None:
        print(f"tusd-py: cannot start: {refusal}", file=sys.stderr)
        return 2
    try:
        probe_port(config.host, config.port)
    except ListenError as exc:
        return refuse_start(exc, config)
    if not (config.download_signing_key or config.jwt_secret):
        # One host (signing_key_refusal let it through): one key per run, the same in every worker.
        config = msgspec.structs.replace(config, download_signing_key=secrets.token_urlsafe(32))
    # The run's private directory (0700): the metrics files and the host service's socket.
    metrics_dir = tempfile.mkdtemp(prefix="tusd-py-run-")
    # Before prometheus_client is imported here or in a worker: its value class is chosen at import.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return Supervisor(config, metrics_dir).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def probe_port(host: str, port: int) -> None:
    """Raise ListenError if the port is taken, by a bind without SO_REUSEPORT (then released).

    The workers bind with SO_REUSEPORT, which a second ``--processes`` server on the same port
    would do too: the kernel would put both into one group and split the connections between
    two servers. Binding once without the option fails on any socket already there, as a
    single-process server's start does.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(host, port, OSError(errno.EADDRNOTAVAIL, str(exc))) from exc
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise ListenError(host, port, exc) from exc


class Supervisor:
    def __init__(self, config: Config, metrics_dir: str) -> None:
        self.config = config
        self.metrics_dir = metrics_dir
        self.slots = [_Slot(index) for index in range(config.processes)]
        self._context = multiprocessing.get_context("spawn")
        self._stopping = False
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self.host_socket: str | None = None

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        host = self._start_host()
        try:
            status = self._start_all()
            if status is None:
                log.info(
                    "serving",
                    url=f"http://{self.config.host}:{self.config.port}{self.config.base_path}",
                    processes=len(self.slots),
                    metrics_dir=self.metrics_dir,
                    pids=[slot.process.pid for slot in self.slots if slot.process is not None],
                )
                self._supervise()
                status = 0
            self._drain()
            return status
        finally:
            if host is not None:
                host.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._wake_read)
            os.close(self._wake_write)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping:
            log.info("stop requested", signal=signal.Signals(signum).name)
        self._stopping = True
        with contextlib.suppress(BlockingIOError):  # a wake-up is already pending
            os.write(self._wake_write, b"x")

    # -- starting ---------------------------------------------------------------------------------
    def _start_host(self) -> HostServiceThread | None:
        """The host service, unless Redis and PostgreSQL hold everything it would."""
        if self.config.redis_url and self.config.database_url:
            return None
        from tusd_py.host.recovery import requeue_previous_runs_jobs
        from tusd_py.host.service import HostService, HostServiceThread
        from tusd_py.server.wiring import quota_limits

        requeue_previous_runs_jobs(self.config)  # no worker runs yet: every running job is the last run's

        self.host_socket = os.path.join(self.metrics_dir, "host.sock")
        thread = HostServiceThread(HostService(self.host_socket, quota_limits=quota_limits(self.config)))
        thread.start()
        return thread

    def _spawn(self, slot: _Slot) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=worker_main,
            args=(self.config, slot.index, writer, self.host_socket),
            name=f"tusd-py-worker-{slot.index}",
        )
        process.start()
        writer.close()  # the worker holds the other copy: EOF here once it is gone
        slot.process, slot.ready, slot.serving = process, reader, False
        slot.started_at, slot.restart_at = time.monotonic(), None

    def _start_all(self) -> int | None:
        """Start every worker; None once all serve, else the exit status (a failed start, a signal)."""
        for slot in self.slots:
            self._spawn(slot)
        deadline = time.monotonic() + START_TIMEOUT
        while not all(slot.serving for slot in self.slots):
            if self._stopping:
                return 0
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                print(f"tusd-py: cannot start: a worker did not start within {START_TIMEOUT:g} s", file=sys.stderr)
                return 2
            self._wait(remaining)
            self._collect_ready()
            for slot in self.slots:
                if not slot.serving and slot.process is not None and not slot.process.is_alive():
                    # Its reason is on stderr already (serving.refuse_start in the worker).
                    code = slot.process.exitcode
                    return code if code else 1
        return None

    # -- supervising ------------------------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            pending = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
            self._wait(max(0.0, min(pending) - now) if pending else 5.0)
            if self._stopping:
                return
            self._collect_ready()
            self._collect_deaths()
            now = time.monotonic()
            for slot in self.slots:
                if slot.restart_at is not None and slot.restart_at <= now:
                    self._spawn(slot)

    def _wait(self, timeout: float) -> None:
        handles: list[Connection | int] = [self._wake_read]
        for slot in self.slots:
            if slot.process is not None and slot.restart_at is None:
                handles.append(slot.process.sentinel)
            if slot.ready is not None:
                handles.append(slot.ready)
        if self._wake_read in wait(handles, timeout):
            os.read(self._wake_read, 64)

    def _collect_ready(self) -> None:
        for slot in self.slots:
            if slot.ready is None or not slot.ready.poll():
                continue
            try:
                pid = slot.ready.recv()
            except EOFError:  # the worker died before serving: _collect_deaths takes it
                pid = None
            slot.ready.close()
            slot.ready = None
            if pid is not None:
                slot.serving = True
                log.info("worker serving", worker=slot.index, pid=pid)

    def _collect_deaths(self) -> None:
        for slot in self.slots:
            process = slot.process
            if process is None or slot.restart_at is not None or process.is_alive():
                continue
            process.join()
            self._forget(process)
            lived = time.monotonic() - slot.started_at
            slot.failures = 1 if slot.serving and lived >= STABLE_AFTER else slot.failures + 1
            delay = restart_delay(slot.failures)
            slot.restart_at = time.monotonic() + delay
            if slot.ready is not None:
                slot.ready.close()
                slot.ready = None
            from tusd_py.telemetry import metrics  # after PROMETHEUS_MULTIPROC_DIR is set (serve_processes)

            metrics.WORKER_RESTARTS.inc()
            log.warning(
                "worker died; restarting it",
                worker=slot.index,
                pid=process.pid,
                exit_code=process.exitcode,
                served_seconds=round(lived, 1),
                restart_in=delay,
            )

    def _forget(self, process: BaseProcess) -> None:
        """A gone worker's live gauges (open connections...) must no longer count in the sum."""
        from prometheus_client import multiprocess

        if process.pid is not None:
            multiprocess.mark_process_dead(process.pid, self.metrics_dir)  # type: ignore[no-untyped-call]

    # -- stopping ---------------------------------------------------------------------------------
    def _drain(self) -> None:
        running = [slot.process for slot in self.slots if slot.process is not None and slot.process.is_alive()]
        log.info("shutting down: draining workers", workers=len(running))
        for process in running:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.shutdown_timeout + DRAIN_MARGIN
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
        killed = [process for process in running if process.is_alive()]
        for process in killed:
            process.kill()
            process.join()
        for slot in self.slots:
            if slot.ready is not None:
                slot.ready.close()
        log.info("stopped; every worker exited", workers=len(running), killed=len(killed))


def worker_main(config: Config, index: int, ready: Connection, host_socket: str | None = None) -> None:
    """One worker process: a whole server on the shared port (SO_REUSEPORT)."""
    from tusd_py import host
    from tusd_py.server.serving import run_server
    from tusd_py.telemetry.logs import configure_logging

    host.attach(host_socket)  # locks and quotas through the supervisor's host service
    configure_logging(config.log_format, config.log_level)
    structlog.contextvars.bind_contextvars(process=index)
    _watch_parent(os.getppid())

    def announce() -> None:
        ready.send(os.getpid())
        ready.close()

    sys.exit(run_server(config, reuse_port=True, on_serving=announce))


def _watch_parent(parent: int) -> None:
    """SIGTERM this worker once its parent is gone (its parent then is init or a subreaper)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_WATCH_INTERVAL)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
