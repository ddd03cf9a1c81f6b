"""Connections: the open-file limit, a connection cap, and a deadline for request headers.

Every TCP connection is a file descriptor. With the common soft limit of 1,024 a thousand idle
connections used to exhaust the process: ``accept()`` failed with EMFILE, nobody was served and
asyncio logged a traceback for each retry. Here the soft limit is raised to the hard one at start,
connections above ``--max-connections`` (by default three quarters of that limit, so data files,
SQLite and S3 sockets keep their headroom) get an immediate ``503`` instead of a stall, a
connection must deliver its request headers within ``--header-timeout`` seconds, and an idle
keep-alive connection is closed after ``--keepalive-timeout`` (aiohttp's own timer).

aiohttp has no header deadline and no connection cap, so the listening socket is served by
``GuardedSite`` with ``ConnectionGuard`` as the protocol factory: it builds aiohttp's
``RequestHandler`` (a subclass adding the header clock) while under the cap, a ``_Refusal``
above it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import ssl
import stat
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from tusd_py.server.startup import ListenError
from tusd_py.telemetry import metrics

# Stdlib loggers on purpose: tusd_py.telemetry.logs collapses repeats of a stdlib record, and both of these
# fire once per connection under an attack.
log = logging.getLogger("tusd_py.server.connections")

# A soft limit of "unlimited" is not something to size a cap from; no server here needs more.
_UNLIMITED = 1 << 20
# How long a refused connection may stay open for the client to read the 503 and close first.
# Closing at once while the client's request is unread makes the kernel send a reset, and many
# clients then report "connection reset" without ever showing the 503.
REFUSAL_LINGER = 1.0
# The kernel's queue of connections not yet accepted (Linux trims it to net.core.somaxconn).
LISTEN_BACKLOG = 1024


@dataclass(frozen=True)
class FileLimit:
    soft: int  # the soft RLIMIT_NOFILE now in force
    hard: int
    was: int  # the soft limit the process started with


def _finite(value: int) -> int:
    return _UNLIMITED if value == resource.RLIM_INFINITY else value


def raise_open_file_limit() -> FileLimit:
    """Raise the soft open-file limit to the hard one: the soft one (often 1,024) caps connections.

    Raising the soft limit up to the hard one needs no privilege. A refusal (e.g. a hard limit of
    "unlimited" above the kernel's nr_open) leaves the limit as it was.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _finite(hard)
    if _finite(soft) < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            target = _finite(soft)
    else:
        target = _finite(soft)
    return FileLimit(soft=target, hard=_finite(hard), was=_finite(soft))


def default_max_connections(open_files: int) -> int:
    """Three quarters of the open-file limit: a quarter stays for files, the database and S3."""
    return max(1, open_files * 3 // 4)


def spare_descriptors(open_files: int, max_connections: int) -> int:
    """How many refusals may linger: a quarter of the descriptors left above the cap.

    Half as many is asyncio's accept batch (see GuardedSite.start), and about three batches are
    in flight before their refusals close; cap + refusals + batches + the process's own files
    then stay below the limit.
    """
    return max(8, min(128, (open_files - max_connections) // 4))


def plain_response(status: int, reason: str, text: str, *, extra: str = "") -> bytes:
    """A whole HTTP/1.1 response written straight to a transport, then the connection closes."""
    body = text.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_BUSY = plain_response(
    503,
    "Service Unavailable",
    "server busy: too many open connections, retry shortly\n",
    extra="Retry-After: 2\r\n",
)
_HEADERS_TOO_SLOW = plain_response(408, "Request Timeout", "request headers not received in time\n")


class ConnectionGuard:
    """The protocol factory of the listening socket: served connections up to the cap, then refusals.

    Over the cap a connection is accepted and answered ``503`` with ``Retry-After`` and
    ``Connection: close`` rather than left unaccepted: a client or proxy gets a definite,
    retryable answer at once, where a connection stuck in the kernel's backlog only times out
    (and a proxy then marks the upstream dead). Each refusal holds its descriptor for at most
    REFUSAL_LINGER; once spare_descriptors() refusals are open (a flood), new ones are closed
    at once.
    """

    def __init__(
        self,
        server: web.Server,
        *,
        max_connections: int,
        open_files: int,
        header_timeout: float,
        handler_options: dict[str, Any],
    ) -> None:
        self.server = server
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.served = 0
        self.refusing = 0
        self.shutdown = ShutdownReport()
        self._lingering_refusals = spare_descriptors(open_files, max_connections)
        self._handler_options = handler_options

    def __call__(self) -> asyncio.Protocol:
        loop = asyncio.get_running_loop()
        if self.served >= self.max_connections:
            log.warning(
                "connection limit reached, refusing new connections with 503", extra={"limit": self.max_connections}
            )
            return _Refusal(self, loop, linger=self.refusing < self._lingering_refusals)
        # Counted here, not in connection_made: asyncio creates the protocols of a whole accept
        # burst before any of them is connected, and the cap must hold for the burst too.
        self.served += 1
        metrics.CONNECTIONS_OPEN.inc()
        return _GuardedHandler(self.server, guard=self, loop=loop, **self._handler_options)

    def release(self) -> None:
        self.served -= 1
        metrics.CONNECTIONS_OPEN.dec()


@dataclass
class ShutdownReport:
    """Requests in flight at shutdown: finished within the grace period, or cut at its end."""

    drained: int = 0
    cut: int = 0

    def count(self, *, cut: bool) -> None:
        if cut:
            self.cut += 1
        else:
            self.drained += 1


#: The timeout aiohttp's shutdown gets for a request already past the shutdown timeout.
CUT_AT_ONCE = 0.001


class _GuardedHandler(RequestHandler):
    """aiohttp's connection handler plus a deadline for a complete header block, and a shutdown
    that lets the request in flight read the rest of its body.

    The clock starts when the connection opens and when the first bytes of a further request
    arrive on an idle keep-alive connection; it stops when aiohttp has parsed the headers. A
    connection idle with no bytes at all is the keep-alive timer's business. This reads three
    attributes of RequestHandler (``_waiter``: pending while it waits for a request,
    ``_request_count``: headers parsed so far), checked by tests/server/test_connections.py.

    At shutdown aiohttp marks every connection closing (``close``, then ``shutdown``), and from
    then on drops every byte that arrives, the body of the request in flight included: a PATCH
    still sending hung until the shutdown timeout cut it. A busy connection is therefore marked
    only once its request is done (``_request_in_progress``, ``_handler_waiter``: aiohttp's own
    wait for it, which ``shutdown`` then skips); tests/integration/test_crash_safety.py shows it.
    """

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard: ConnectionGuard | None = guard
        self._shutdown_report = guard.shutdown
        self._header_clock: asyncio.TimerHandle | None = None
        self._header_bytes = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_header_clock()

    def data_received(self, data: bytes) -> None:
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:
            self._stop_header_clock()
        elif data and self._waiting_for_request():
            self._header_bytes = True
            if self._header_clock is None:
                self._start_header_clock()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_clock()
        if self._guard is not None:  # release once, whatever aiohttp calls twice
            self._guard.release()
            self._guard = None
        super().connection_lost(exc)

    def close(self) -> None:
        if self._request_in_progress:
            return  # closed by shutdown once the request is done (see the class docstring)
        super().close()

    async def shutdown(self, timeout: float | None = 15.0) -> None:  # noqa: ASYNC109 - aiohttp's signature
        """aiohttp's graceful close, counted: a request still running when ``timeout`` ends is cut."""
        if not self._request_in_progress:
            super().close()
            await super().shutdown(timeout)
            return
        self._handler_waiter = self._loop.create_future()
        with suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._handler_waiter
        self._handler_waiter = None
        cut = self._request_in_progress
        super().close()  # no next request on this connection
        # A request past the timeout: aiohttp's shutdown cancels it at once (a positive timeout,
        # since aiohttp reads 0 as "no limit").
        await super().shutdown(CUT_AT_ONCE if cut else timeout)
        self._shutdown_report.count(cut=cut)

    def _waiting_for_request(self) -> bool:
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _start_header_clock(self) -> None:
        timeout = self._guard.header_timeout if self._guard is not None else 0
        if timeout > 0:
            self._header_clock = self._loop.call_later(timeout, self._headers_overdue)

    def _stop_header_clock(self) -> None:
        if self._header_clock is not None:
            self._header_clock.cancel()
            self._header_clock = None
        self._header_bytes = False

    def _headers_overdue(self) -> None:
        self._header_clock = None
        if not self._waiting_for_request() or self.transport is None:
            return
        peer = self.transport.get_extra_info("peername")
        log.info("request headers not received in time, connection closed", extra={"peer": str(peer)})
        if self._header_bytes:  # a request was started: say why it ends (RFC 9110 section 15.5.9)
            self.transport.write(_HEADERS_TOO_SLOW)
        self.force_close()


class _Refusal(asyncio.Protocol):
    """Answers 503 at once, reads and drops whatever the client sends, and closes."""

    def __init__(self, guard: ConnectionGuard, loop: asyncio.AbstractEventLoop, *, linger: bool) -> None:
        self._guard = guard
        self._loop = loop
        self._linger = linger
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._guard.refusing += 1
        transport.write(_BUSY)
        if not self._linger:
            transport.close()
            return
        if transport.can_write_eof():
            transport.write_eof()  # our FIN after the answer; the client's request is still read
        self._deadline = self._loop.call_later(REFUSAL_LINGER, transport.abort)

    def data_received(self, data: bytes) -> None:
        """Drop it: this request will never be served, and reading it avoids a reset on close."""

    def eof_received(self) -> bool:
        return False  # the client is done too: asyncio closes the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.refusing -= 1
        if self._deadline is not None:
            self._deadline.cancel()


class GuardedSite(web.BaseSite):
    """A TCP site whose protocol factory is a ConnectionGuard rather than the bare web.Server."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int,
        open_files: int,
        header_timeout: float,
        keepalive_timeout: float,
        reuse_port: bool = False,
        unix_socket: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, backlog=max(4, spare_descriptors(open_files, max_connections) // 2))
        self._host = host
        self._port = port
        self._unix_socket = unix_socket  # listen there instead of host and port
        self._ssl = ssl_context
        # SO_REUSEPORT, for the workers of --processes N: each has its own socket on the port and
        # the kernel spreads new connections over them. Off otherwise, so that a second server
        # started on a taken port still fails with "address already in use".
        self._reuse_port = reuse_port
        self._guard_options: dict[str, Any] = {
            "max_connections": max_connections,
            "open_files": open_files,
            "header_timeout": header_timeout,
            "handler_options": {"keepalive_timeout": keepalive_timeout, "access_log": None},
        }
        self.guard: ConnectionGuard | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://unix:{self._unix_socket}:" if self._unix_socket else f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self.guard = ConnectionGuard(server, **self._guard_options)
        loop = asyncio.get_running_loop()
        try:
            if self._unix_socket is not None:
                remove_stale_socket(self._unix_socket)
                self._server = await loop.create_unix_server(
                    self.guard, self._unix_socket, backlog=self._backlog, ssl=self._ssl
                )
            else:
                self._server = await loop.create_server(
                    self.guard,
                    self._host,
                    self._port,
                    backlog=self._backlog,
                    reuse_address=True,
                    reuse_port=self._reuse_port or None,
                    ssl=self._ssl,
                )
        except OSError as exc:
            raise ListenError(self._unix_socket or self._host, 0 if self._unix_socket else self._port, exc) from exc
        # asyncio uses ``backlog`` twice: as the kernel's queue of not yet accepted connections
        # (which cost this process no descriptor) and as how many it accepts per wake-up (each
        # a descriptor before the guard sees it). Keep the batch small and the queue large, or a
        # burst of clients sees dropped SYNs and a one-second retransmit.
        for transport_socket in self._server.sockets:
            with socket.socket(fileno=os.dup(transport_socket.fileno())) as listener:
                listener.listen(LISTEN_BACKLOG)


def remove_stale_socket(path: str) -> None:
    """A socket file left by a server that died is removed; one a live server answers on is kept
    (listening then fails with "address already in use", as on a taken port)."""
    if not os.path.exists(path) or not stat.S_ISSOCK(os.stat(path).st_mode):
        return
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
        except OSError:
            pass


def serve(
    app: web.Application,
    site_options: dict[str, Any],
    shutdown_timeout: float,
    *,
    tick: float,
    on_serving: Callable[[], None] | None = None,
) -> None:
    """Run ``app`` until SIGTERM/SIGINT, then shut down gracefully within ``shutdown_timeout``.

    What web.run_app does, with GuardedSite as the listener. ``on_serving`` runs once the app
    started (its storage checked) and the socket listens; a failure before that propagates
    (ListenError for the socket) after cleanup. ``tick`` seconds apart (and once at the end)
    tusd_py.telemetry.logs writes its "repeated N times" summaries.
    """
    from tusd_py.telemetry.logs import flush_repeated_logs

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runner = web.AppRunner(app, handle_signals=True, shutdown_timeout=shutdown_timeout, access_log=None)
    sites: list[GuardedSite] = []  # made once the runner is set up, as aiohttp requires

    async def start() -> None:
        await runner.setup()
        sites.append(GuardedSite(runner, **site_options))
        await sites[0].start()
        if on_serving is not None:
            on_serving()

    async def tick_forever() -> None:
        while True:
            await asyncio.sleep(tick)
            flush_repeated_logs()

    forever = loop.create_task(tick_forever())
    guard: ConnectionGuard | None = None  # set when a signal stops a serving server
    try:
        loop.run_until_complete(start())
        loop.run_until_complete(forever)
    except (web.GracefulExit, KeyboardInterrupt):
        guard = sites[0].guard if sites else None
        if guard is not None:
            log.info(
                "shutting down: no new connections, in-flight requests get the shutdown timeout",
                extra={"connections": guard.served, "shutdown_timeout": shutdown_timeout},
            )
    finally:
        # Cleanup runs in a task of its own, not in a cancelled one, so aiohttp's graceful
        # shutdown gets its whole timeout.
        forever.cancel()
        with suppress(asyncio.CancelledError):
            loop.run_until_complete(forever)
        try:
            loop.run_until_complete(runner.cleanup())
        finally:
            _cancel_remaining(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            if guard is not None:
                _log_shutdown(guard.shutdown)
            flush_repeated_logs(pending=True)


def _log_shutdown(report: ShutdownReport) -> None:
    extra = {"drained": report.drained, "cut": report.cut}
    if report.cut:
        # Written bytes of a cut PATCH are kept; its client resumes from the stored offset.
        log.warning("stopped; requests still running at the shutdown timeout were cut", extra=extra)
    else:
        log.info("stopped; every in-flight request finished", extra=extra)


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
