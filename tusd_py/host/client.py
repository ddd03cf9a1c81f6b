"""A worker's one connection to its supervisor's host service (tusd_py/host/service.py).

Requests are numbered and answered in any order; the connection's protocol routes each answer
to the request waiting for it and each ``ask`` push to the hold it names, as the bytes arrive (no
reader task, and one timer for every request's deadline: a lock costs the worker a write, a
wake-up and a future). Every answer also confirms
this worker's liveness lease: the service received the request at or after the moment it was
sent, so it will not cut this worker off before ``sent + lease``. That is what lets a fence
check answer locally (:attr:`HostClient.confirmed_until`) while the pings (every quarter lease)
keep arriving, and ask the service only when they did not.

A lost connection (the service cut this worker off after a stalled event loop, or the
supervisor is gone) loses every lock held through it: each hold is told to let go and its fence
refuses further commits. The client connects again in the background, so new requests work as
soon as the service is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import structlog

from tusd_py.host.wire import DEFAULT_LEASE, LINE_LIMIT, decode, encode

log = structlog.get_logger(__name__)

#: Seconds the service may take to answer a request before it counts as unreachable.
COMMAND_TIMEOUT = 5.0
#: How often unanswered requests are checked against their deadline.
TIMEOUT_TICK = 0.1


class HostUnavailable(Exception):
    """The host service cannot be asked right now."""


class _Connection(asyncio.Protocol):
    """One connection's bytes, cut into lines and handed to the client as they arrive: no reader
    task and no coroutine switch per line (a lock is one of these lines each way)."""

    def __init__(self, client: HostClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.hello: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._rest = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._rest:
            data, self._rest = self._rest + data, b""
        start = 0
        try:
            while (end := data.find(b"\n", start)) >= 0:
                message = decode(data[start:end])
                start = end + 1
                if self.hello.done():
                    self.client._route(message)
                else:
                    self.hello.set_result(message)
        except (ValueError, IndexError, TypeError) as exc:
            self._fail(f"unreadable message: {exc!r}")
            return
        self._rest = data[start:]
        if len(self._rest) > LINE_LIMIT:
            self._fail("a line longer than the limit")

    def _fail(self, why: str) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.client._lost(self, why)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.hello.done():
            self.hello.set_exception(ConnectionError("closed before the greeting"))
        self.client._lost(self, "closed by the service" if exc is None else repr(exc))


class _Pending:
    """A request waiting for its answer."""

    __slots__ = ("deadline", "future", "op", "sent")

    def __init__(self, future: asyncio.Future[list[Any]], op: str, sent: float, deadline: float) -> None:
        self.future, self.op, self.sent, self.deadline = future, op, sent, deadline


class HostClient:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lease = DEFAULT_LEASE
        #: Monotonic time until which the service keeps this worker's locks whatever happens.
        self.confirmed_until = 0.0
        #: token -> the object told when the service asks that hold to let go (or when it is lost).
        self.holds: dict[int, Callable[[bool], None]] = {}
        self._connection: _Connection | None = None
        self._writer: asyncio.Transport | None = None  # the connection's, None while disconnected
        self._seq = 0
        self._out: list[bytes] = []  # lines to write at the end of this turn of the loop
        self._pending: dict[int, _Pending] = {}
        self._abandoned: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []  # [the timeouts, the pings]
        self._reconnecting: asyncio.Task[None] | None = None
        self._closing = False
        self._users = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect (once for all users: the locker and the quota ledger share the connection)."""
        self._users += 1
        if self._tasks:
            return
        self._closing = False
        try:
            await self._connect()
        except (OSError, TimeoutError) as exc:
            self._users -= 1
            raise HostUnavailable(f"cannot reach the supervisor's host service at {self.path}: {exc}") from exc
        self._tasks = [
            asyncio.create_task(self._expire(), name="host-service-timeouts"),
            asyncio.create_task(self._ping(), name="host-service-ping"),
        ]

    async def close(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users:
            return
        self._closing = True
        tasks = [*self._tasks, *([self._reconnecting] if self._reconnecting is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks, self._reconnecting = [], None
        self._disconnect("closed")

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        transport, connection = await loop.create_unix_connection(lambda: _Connection(self), self.path)
        try:
            hello = await asyncio.wait_for(connection.hello, COMMAND_TIMEOUT)
            self.lease = float(hello[1])
        except BaseException:
            transport.abort()
            raise
        self._connection, self._writer = connection, transport
        self.confirmed_until = time.monotonic()  # nothing held yet: nothing to confirm

    def _disconnect(self, why: str) -> None:
        writer, self._writer, self._connection = self._writer, None, None
        self._out.clear()  # lines for the lost connection: its locks are gone, its requests failed
        if writer is not None:
            writer.abort()
        for tell in list(self.holds.values()):
            tell(True)  # lost: the service gave (or will give) these locks to others
        self.holds.clear()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(HostUnavailable(f"the host service connection was lost ({why})"))
        self._pending.clear()
        self._abandoned.clear()

    def _lost(self, connection: _Connection, why: str) -> None:
        """The connection ended: drop every hold, and connect again in the background (with backoff)."""
        if connection is not self._connection or self._closing:
            return
        log.warning("host service connection lost; upload locks held through it are lost", reason=why)
        self._disconnect(why)
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect(), name="host-service-connect")

    async def _reconnect(self) -> None:
        delay = 0.1
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                await self._connect()
                return
            except (OSError, TimeoutError, ValueError, IndexError, TypeError):
                delay = min(delay * 2, 2.0)

    def _route(self, message: list[Any]) -> None:
        kind, key = message[0], message[1]
        if kind == "ask":
            tell = self.holds.get(key)
            if tell is not None:
                tell(False)
            return
        pending = self._pending.pop(key, None)
        if pending is not None:
            self.confirmed_until = max(self.confirmed_until, pending.sent + self.lease)
            if not pending.future.done():
                pending.future.set_result(message)
        elif key in self._abandoned:
            self._abandoned.discard(key)
            self._give_back(message)

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            with contextlib.suppress(HostUnavailable):
                await self.request("P")

    async def _expire(self) -> None:
        """Requests unanswered past their deadline fail (one timer for all, not one per request)."""
        while True:
            await asyncio.sleep(TIMEOUT_TICK)
            now = time.monotonic()
            for seq, pending in list(self._pending.items()):
                if pending.deadline <= now and not pending.future.done():
                    del self._pending[seq]
                    self._give_up(pending.op, seq)
                    pending.future.set_exception(
                        HostUnavailable(f"the host service did not answer within {pending.deadline - pending.sent:g} s")
                    )

    # -- requests ----------------------------------------------------------------------------------
    def send(self, message: list[Any]) -> None:
        """A message that needs no answer (quietly dropped while disconnected: locks are lost then)."""
        if self._writer is not None:
            self._write(encode(message))

    def _write(self, line: bytes) -> None:
        """Every line written in one turn of the loop goes out in one write: one system call, one
        wake-up of the service."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(line)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._writer is not None:
            self._writer.write(b"".join(out))

    async def request(self, op: str, *args: Any, within: float | None = COMMAND_TIMEOUT) -> list[Any]:
        """Send ``[op, seq, *args]`` and return the answer; raise :class:`HostUnavailable`."""
        if self._writer is None:
            raise HostUnavailable("the host service is not connected")
        self._seq += 1
        seq = self._seq
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        sent = time.monotonic()
        self._pending[seq] = _Pending(future, op, sent, sent + within if within is not None else math.inf)
        self._write(encode([op, seq, *args]))
        try:
            return await future
        except asyncio.CancelledError:
            if self._pending.pop(seq, None) is not None:
                self._give_up(op, seq)
            elif future.done() and not future.cancelled() and future.exception() is None:
                self._give_back(future.result())  # answered, then cancelled before it resumed
            raise

    def _give_back(self, answer: list[Any]) -> None:
        """A lock granted to a caller that gave up goes back at once (else it is held for good:
        the service frees a live worker's locks only when the worker goes)."""
        if answer[0] == "G":
            self.send(["U", answer[2]])

    def _give_up(self, op: str, seq: int) -> None:
        if op == "L":  # a lock request stays queued at the service unless forgotten
            self._abandoned.add(seq)
            self.send(["X", seq])
