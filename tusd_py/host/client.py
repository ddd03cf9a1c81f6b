"""A worker's one connection to its supervisor's host service (tusd_py/host/service.py).

Requests are numbered and answered in any order; the reader task routes each answer to the
request waiting for it and each ``ask`` push to the hold it names. Every answer also confirms
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
import time
from collections.abc import Callable
from typing import Any

import structlog

from tusd_py.host.wire import DEFAULT_LEASE, LINE_LIMIT, decode, encode

log = structlog.get_logger(__name__)

#: Seconds the service may take to answer a request before it counts as unreachable.
COMMAND_TIMEOUT = 5.0


class HostUnavailable(Exception):
    """The host service cannot be asked right now."""


class HostClient:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lease = DEFAULT_LEASE
        #: Monotonic time until which the service keeps this worker's locks whatever happens.
        self.confirmed_until = 0.0
        #: token -> the object told when the service asks that hold to let go (or when it is lost).
        self.holds: dict[int, Callable[[bool], None]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._seq = 0
        self._pending: dict[int, asyncio.Future[list[Any]]] = {}
        self._abandoned: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
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
            reader = await self._connect()
        except OSError as exc:
            self._users -= 1
            raise HostUnavailable(f"cannot reach the supervisor's host service at {self.path}: {exc}") from exc
        self._tasks = [
            asyncio.create_task(self._run(reader), name="host-service-reader"),
            asyncio.create_task(self._ping(), name="host-service-ping"),
        ]

    async def close(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users:
            return
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._disconnect("closed")

    async def _connect(self) -> asyncio.StreamReader:
        reader, writer = await asyncio.open_unix_connection(self.path, limit=LINE_LIMIT)
        hello = decode(await asyncio.wait_for(reader.readline(), COMMAND_TIMEOUT))
        self.lease = float(hello[1])
        self._writer = writer
        self.confirmed_until = time.monotonic()  # nothing held yet: nothing to confirm
        return reader

    def _disconnect(self, why: str) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.transport.abort()
        for tell in list(self.holds.values()):
            tell(True)  # lost: the service gave (or will give) these locks to others
        self.holds.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(HostUnavailable(f"the host service connection was lost ({why})"))
        self._pending.clear()
        self._abandoned.clear()

    async def _run(self, reader: asyncio.StreamReader) -> None:
        """Read answers; on a lost connection drop every hold and connect again (with backoff)."""
        delay = 0.1
        while not self._closing:
            try:
                while (line := await reader.readline()).endswith(b"\n"):
                    self._route(decode(line))
                why = "closed by the service"
            except (ConnectionError, ValueError) as exc:
                why = repr(exc)
            if self._closing:
                return
            log.warning("host service connection lost; upload locks held through it are lost", reason=why)
            self._disconnect(why)
            while not self._closing:
                await asyncio.sleep(delay)
                try:
                    reader = await self._connect()
                    delay = 0.1
                    break
                except (OSError, TimeoutError, ValueError):
                    delay = min(delay * 2, 2.0)

    def _route(self, message: list[Any]) -> None:
        kind, key = message[0], message[1]
        if kind == "ask":
            tell = self.holds.get(key)
            if tell is not None:
                tell(False)
            return
        future = self._pending.pop(key, None)
        if future is not None:
            if not future.done():
                future.set_result(message)
        elif key in self._abandoned:
            self._abandoned.discard(key)
            if kind == "G":  # granted after its caller gave up: give it back at once
                self.send(["U", message[2]])

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            with contextlib.suppress(HostUnavailable):
                await self.request("P")

    # -- requests ----------------------------------------------------------------------------------
    def send(self, message: list[Any]) -> None:
        """A message that needs no answer (quietly dropped while disconnected: locks are lost then)."""
        if self._writer is not None:
            self._writer.write(encode(message))

    async def request(self, op: str, *args: Any, within: float | None = COMMAND_TIMEOUT) -> list[Any]:
        """Send ``[op, seq, *args]`` and return the answer; raise :class:`HostUnavailable`."""
        if self._writer is None:
            raise HostUnavailable("the host service is not connected")
        self._seq += 1
        seq = self._seq
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[seq] = future
        sent = time.monotonic()
        self._writer.write(encode([op, seq, *args]))
        try:
            answer = await asyncio.wait_for(future, within)
        except TimeoutError:
            self._give_up(op, seq)
            raise HostUnavailable(f"the host service did not answer within {within:g} s") from None
        except asyncio.CancelledError:
            self._give_up(op, seq)
            raise
        self.confirmed_until = max(self.confirmed_until, sent + self.lease)
        return answer

    def _give_up(self, op: str, seq: int) -> None:
        self._pending.pop(seq, None)
        if op == "L":  # a lock request stays queued at the service unless forgotten
            self._abandoned.add(seq)
            self.send(["X", seq])
