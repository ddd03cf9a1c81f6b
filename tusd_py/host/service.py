"""The host service: upload locks and the quota ledger for the worker processes of one supervisor.

It runs in a thread of the supervisor (:class:`HostServiceThread`), an asyncio server on a UNIX
socket, one connection ("peer") per worker. Every request is handled, in the order it came, in
one step of this one event loop as its bytes arrive (a protocol, no task per connection), so the
state needs no lock of its own.

Locks keep :class:`~tusd_py.locks.locker.InProcessLocker`'s semantics across processes:

- a free lock is granted at once with a **fencing token** (``max(last + 1, time in µs)``, so
  tokens keep growing across runs: the filesystem's ``<id>.fence`` files outlive a run);
- a taken lock: the holder's worker is asked once to let go (``["ask", token]``, the newest
  request wins once the holder's body stalls) and the request waits in line; a release grants
  the lock to the first in line at once (no polling), and a holder that is granted the lock
  while others still wait is asked to let go in turn, as in one process;
- a request still waiting after its timeout (``--lock-timeout``) is answered "busy" (423);
- a try (``try_lock``: the sweep, cleanup) never waits and never asks.

A worker's locks live as long as its connection *and its liveness*: a worker that says nothing
for ``lease`` seconds (its event loop stopped: SIGSTOP, a hang; a live one pings every quarter
lease) is cut off and its locks are given to whoever waits, exactly as a Redis lease runs out.
Its fence then refuses every commit (:class:`~tusd_py.host.locker.HostFence`), and on the
filesystem the newer holder's token in ``<id>.fence`` refuses the stale writer's batches even if
it wakes between a check and a write. A worker that dies (SIGKILL) closes its socket: its locks
are free at once.

The quota ledger is :class:`~tusd_py.quotas.ledger.MemoryQuotaLedger` itself: a reservation is checked
and recorded in one step of this loop, so workers racing for a user's last bytes never jointly
exceed the quota. It lives as long as the supervisor (workers restart, it stays), and is rebuilt
from storage once per run by the first worker that asks (``RB``), before any worker serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import structlog

from tusd_py.host.wire import DEFAULT_LEASE, LINE_LIMIT, decode, encode
from tusd_py.model.upload import UploadInfo
from tusd_py.quotas.ledger import MemoryQuotaLedger, QuotaExceeded, QuotaLimits

log = structlog.get_logger(__name__)
T = TypeVar("T")


@dataclass(eq=False)
class _Peer:
    transport: asyncio.Transport
    last_seen: float
    holds: dict[int, _Hold] = field(default_factory=dict)
    waits: dict[int, _Waiter] = field(default_factory=dict)
    closed: bool = False
    _out: list[bytes] = field(default_factory=list)

    def send(self, message: list[Any]) -> None:
        """Queue a message; every message queued in one turn of the loop goes out in one write
        (one system call, one wake-up of the worker)."""
        if self.closed:
            return
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(encode(message))

    def _flush(self) -> None:
        out, self._out = self._out, []
        if not self.closed:
            self.transport.write(b"".join(out))


@dataclass(eq=False)
class _Hold:
    token: int
    upload_id: str
    peer: _Peer
    asked: bool = False


@dataclass(eq=False)
class _Waiter:
    peer: _Peer
    seq: int
    upload_id: str
    timer: asyncio.TimerHandle | None = None


Handler = Callable[[_Peer, list[Any]], None]


def _at_once(step: Coroutine[Any, Any, T]) -> T:
    """Run a ledger step that never suspends (MemoryQuotaLedger: checked and recorded in one step)
    to its end, here and now, so every message is handled in the order it came."""
    try:
        step.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    step.close()
    raise RuntimeError("a quota ledger step suspended; the host service's ledger must not")


class _Connection(asyncio.Protocol):
    """One worker's connection: its lines handled as they arrive, in order, each in one step."""

    def __init__(self, service: HostService) -> None:
        self.service = service
        self.peer: _Peer | None = None
        self._rest = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.peer = self.service._join(transport)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.closed:
            return
        peer.last_seen = asyncio.get_running_loop().time()
        if self._rest:
            data, self._rest = self._rest + data, b""
        start = 0
        handlers = self.service._handlers
        try:
            while (end := data.find(b"\n", start)) >= 0:
                message = decode(data[start:end])
                start = end + 1
                handlers[message[0]](peer, message)
                if peer.closed:
                    return
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("host service: a worker's connection failed", error=repr(exc))
            self.service._drop(peer)
            peer.transport.abort()
            return
        self._rest = data[start:]
        if len(self._rest) > LINE_LIMIT:
            log.warning("host service: a worker sent a line longer than the limit")
            self.service._drop(peer)
            peer.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.service._drop(self.peer)  # EOF or a reset: the worker is gone


class HostService:
    def __init__(self, path: str, *, lease: float = DEFAULT_LEASE, quota_limits: QuotaLimits | None = None) -> None:
        self.path = path
        self.lease = lease
        self.quota_limits = quota_limits or QuotaLimits()
        self.ledger = MemoryQuotaLedger(self.quota_limits)
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._peers: set[_Peer] = set()
        self._holders: dict[str, _Hold] = {}
        self._queues: dict[str, deque[_Waiter]] = {}
        self._last_token = 0
        self._rebuilt = False
        self._rebuilder: _Peer | None = None
        self._rebuild_waiters: deque[tuple[_Peer, int]] = deque()
        self._handlers: dict[str, Handler] = {
            "L": self._lock, "X": self._forget, "U": self._release_token, "C": self._check, "P": self._ping,
            "QR": self._reserve, "QG": self._grow, "QF": self._finished, "QD": self._release_claim, "QU": self._usage,
            "RB": self._rebuild_begin, "RA": self._adopt, "RE": self._rebuild_end,
        }  # fmt: skip

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _Connection(self), self.path)
        os.chmod(self.path, 0o600)
        self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for peer in list(self._peers):
            self._drop(peer)
            peer.transport.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def _join(self, transport: asyncio.Transport) -> _Peer:
        peer = _Peer(transport, asyncio.get_running_loop().time())
        self._peers.add(peer)
        peer.send(["H", self.lease])
        return peer

    def _drop(self, peer: _Peer) -> None:
        """The worker is gone or cut off: its requests are forgotten and its locks handed on."""
        if peer.closed:
            return
        peer.closed = True
        self._peers.discard(peer)
        for waiter in list(peer.waits.values()):
            self._unqueue(waiter)
        for hold in list(peer.holds.values()):
            self._release(hold)
        self._rebuild_waiters = deque(item for item in self._rebuild_waiters if item[0] is not peer)
        if self._rebuilder is peer:
            self._rebuilder = None
            self._next_rebuilder()

    async def _sweep(self) -> None:
        """Cut off workers silent for a whole lease: their event loop stopped."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.lease / 8)
            now = loop.time()
            for peer in list(self._peers):
                if now - peer.last_seen > self.lease:
                    log.warning(
                        "a worker stopped answering for a whole lease: its upload locks are taken from it",
                        locks=len(peer.holds),
                        silent=round(now - peer.last_seen, 1),
                    )
                    self._drop(peer)
                    peer.transport.abort()

    # -- locks -------------------------------------------------------------------------------------
    def _next_token(self) -> int:
        self._last_token = max(self._last_token + 1, time.time_ns() // 1000)
        return self._last_token

    def _lock(self, peer: _Peer, message: list[Any]) -> None:
        _, seq, upload_id, timeout_ms, mode = message
        hold = self._holders.get(upload_id)
        if hold is None:
            self._grant(peer, seq, upload_id, contended=False)
            return
        if mode == "t":
            peer.send(["B", seq, 0])
            return
        waiter = _Waiter(peer, seq, upload_id)
        waiter.timer = asyncio.get_running_loop().call_later(timeout_ms / 1000, self._expire, waiter)
        self._queues.setdefault(upload_id, deque()).append(waiter)
        peer.waits[seq] = waiter
        self._ask(hold)

    def _grant(self, peer: _Peer, seq: int, upload_id: str, *, contended: bool) -> None:
        hold = _Hold(self._next_token(), upload_id, peer)
        self._holders[upload_id] = hold
        peer.holds[hold.token] = hold
        peer.send(["G", seq, hold.token, int(contended)])
        if self._queues.get(upload_id):
            self._ask(hold)  # others still wait: the newest request wins, as in one process

    @staticmethod
    def _ask(hold: _Hold) -> None:
        if not hold.asked:
            hold.asked = True
            hold.peer.send(["ask", hold.token])

    def _release(self, hold: _Hold) -> None:
        hold.peer.holds.pop(hold.token, None)
        if self._holders.get(hold.upload_id) is not hold:
            return
        del self._holders[hold.upload_id]
        queue = self._queues.get(hold.upload_id)
        if not queue:
            return
        waiter = queue.popleft()
        if not queue:
            del self._queues[hold.upload_id]
        self._settle(waiter)
        self._grant(waiter.peer, waiter.seq, waiter.upload_id, contended=True)

    def _settle(self, waiter: _Waiter) -> None:
        if waiter.timer is not None:
            waiter.timer.cancel()
        waiter.peer.waits.pop(waiter.seq, None)

    def _unqueue(self, waiter: _Waiter) -> None:
        self._settle(waiter)
        queue = self._queues.get(waiter.upload_id)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
            if not queue:
                del self._queues[waiter.upload_id]

    def _expire(self, waiter: _Waiter) -> None:
        self._unqueue(waiter)
        waiter.peer.send(["B", waiter.seq, 1])

    def _forget(self, peer: _Peer, message: list[Any]) -> None:
        waiter = peer.waits.get(message[1])
        if waiter is not None:
            self._unqueue(waiter)

    def _release_token(self, peer: _Peer, message: list[Any]) -> None:
        hold = peer.holds.get(message[1])
        if hold is not None:
            self._release(hold)

    def _check(self, peer: _Peer, message: list[Any]) -> None:
        peer.send(["Y" if message[2] in peer.holds else "N", message[1]])

    def _ping(self, peer: _Peer, message: list[Any]) -> None:
        peer.send(["Y", message[1]])

    # -- quotas ------------------------------------------------------------------------------------
    @staticmethod
    def _quota(peer: _Peer, seq: int, change: Coroutine[Any, Any, None]) -> None:
        try:
            _at_once(change)
        except QuotaExceeded as exc:
            peer.send(["Q", seq, exc.limit, exc.reason])
        else:
            peer.send(["Y", seq])

    def _reserve(self, peer: _Peer, message: list[Any]) -> None:
        _, seq, upload_id, owner, nbytes = message
        self._quota(peer, seq, self.ledger.reserve(UploadInfo(id=upload_id, length=nbytes, owner=owner)))

    def _grow(self, peer: _Peer, message: list[Any]) -> None:
        _, seq, upload_id, owner, nbytes = message
        info = UploadInfo(id=upload_id, length=None, owner=owner)
        self._quota(peer, seq, self.ledger.grow(info, nbytes))

    def _finished(self, peer: _Peer, message: list[Any]) -> None:
        _, seq, upload_id, owner, nbytes = message
        self._quota(peer, seq, self.ledger.finished(UploadInfo(id=upload_id, length=nbytes, owner=owner)))

    def _release_claim(self, peer: _Peer, message: list[Any]) -> None:
        self._quota(peer, message[1], self.ledger.release(message[2]))

    def _usage(self, peer: _Peer, message: list[Any]) -> None:
        usage = _at_once(self.ledger.usage(message[2]))
        peer.send(["Y", message[1], usage.bytes, usage.unfinished])

    # -- rebuilding the ledger once per run ----------------------------------------------------------
    def _rebuild_begin(self, peer: _Peer, message: list[Any]) -> None:
        if self._rebuilt:
            peer.send(["Y", message[1], 0])
        else:
            self._rebuild_waiters.append((peer, message[1]))
            self._next_rebuilder()

    def _next_rebuilder(self) -> None:
        """Hand the rebuild to the first worker asking, unless one is at it (or it is done)."""
        if self._rebuilder is not None or self._rebuilt or not self._rebuild_waiters:
            return
        peer, seq = self._rebuild_waiters.popleft()
        self._rebuilder = peer
        self.ledger = MemoryQuotaLedger(self.quota_limits)  # what a dead rebuilder adopted is dropped
        peer.send(["Y", seq, 1])

    def _adopt(self, peer: _Peer, message: list[Any]) -> None:
        if peer is self._rebuilder:
            for upload_id, owner, nbytes, unfinished in message[2]:
                self.ledger.adopt(upload_id, owner, nbytes, bool(unfinished))
        peer.send(["Y", message[1]])

    def _rebuild_end(self, peer: _Peer, message: list[Any]) -> None:
        if peer is self._rebuilder:
            self._rebuilt, self._rebuilder = True, None
            while self._rebuild_waiters:
                waiting, seq = self._rebuild_waiters.popleft()
                waiting.send(["Y", seq, 0])
        peer.send(["Y", message[1]])


class HostServiceThread:
    """The service on an event loop of its own, in a daemon thread of the supervisor."""

    def __init__(self, service: HostService) -> None:
        self.service = service
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="host-service", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("the host service did not start")
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.service.start()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await self.service.close()
