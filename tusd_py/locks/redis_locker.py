"""Upload locks shared by several tusd-py instances through Redis (``--redis-url``).

The same semantics as :class:`~tusd_py.locks.locker.InProcessLocker` (tests/locks/test_locking.py runs its
assertions on both): the newest request wins once the holder stalls, a holder that does not let
go within ``--lock-timeout`` gives the newcomer 423, ``try_lock`` never interrupts anybody.

Built from three Redis parts:

- a lease: ``SET lock:<id> <owner> NX PX <lease>``, renewed every third of the lease while held,
  renewed and released by compare-and-set scripts (only the owner's value is touched), so the
  uploads of a dead instance are free again one lease later;
- a release request over pub/sub: every locker keeps one subscription to two channels (release
  requests, releases). A waiter registers before it tries, so a release announced after its try
  wakes it; it polls as a fallback (a lost subscription, a dead holder whose lease runs out). The
  holder, told to let go, ends its body stream (``on_release_request``), commits what arrived,
  and releases. The release is announced only when someone waits: a try that finds the lock
  taken leaves a ``waiting:<id>`` flag (in the same script), and the release script publishes
  only if it finds (and removes) that flag, so an uncontended upload costs no broadcast;
- a fencing token, taken with the lease in the same script: ``max(previous + 1, Redis time in
  µs)``, so tokens keep growing even when Redis restarts empty. The lock yields a
  :class:`RedisFence` that the write hands to the storage backend: before each commit point the
  backend calls :meth:`RedisFence.check`, which renews the lease only if this owner still holds it
  and no newer token exists, and otherwise refuses the commit (:class:`FenceLost`).

What remains and how it is bounded: a holder paused *between* a successful check and the write it
guards (a SIGSTOP, a GC pause, a partition) for longer than the whole lease. The check renews the
lease, so that pause must exceed the full ``--redis-lease`` before anyone else can even take the
lock. The filesystem closes it entirely (``storage_backends/file_fence.py``: token and file size
compared under an flock, in the same critical section as the write); on S3 the info PUT is the
step after the check, and the lease (10 s by default) is longer than an S3 request.

The scripts are loaded once and run by EVALSHA (redis-py's ``register_script``, which loads
them again after a Redis restart). An uncontended hold costs two commands, the acquisition and
the release, plus one per commit point (the fence check); renewals run only for holds that
outlive a third of the lease.

Redis unreachable: taking a lock raises :class:`~tusd_py.locks.locker.LockUnavailable` (503 with the
reason) and a fence check refuses the commit, so nothing is written without a confirmed lock.
The client reconnects on every command, so service resumes by itself once Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from tusd_py.locks.locker import Locker, LockUnavailable, UploadLocked
from tusd_py.model.fencing import Fence, FenceLost
from tusd_py.telemetry import metrics

log = structlog.get_logger(__name__)

PREFIX = "tusd-py:"
REQUESTS_CHANNEL = PREFIX + "release-requests"
RELEASED_CHANNEL = PREFIX + "released"
#: A waiter retries this often even without news over pub/sub (a dead holder's lease ran out).
POLL_INTERVAL = 0.25
#: How long a fencing counter outlives the last lock on its upload (a day; renewed while held).
FENCE_KEY_TTL_MS = 24 * 3600 * 1000
#: Seconds one Redis command may take before the lock service counts as unreachable.
COMMAND_TIMEOUT = 2.0

# KEYS: lock, fence, waiting. ARGV: owner, lease ms, fence ttl ms. -> {1, token} or {0, current owner}
_ACQUIRE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local t = redis.call('time')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('get', KEYS[2]) or '0')
  local token = math.max(last + 1, now)
  redis.call('set', KEYS[2], string.format('%d', token), 'PX', ARGV[3])
  return {1, token}
end
redis.call('set', KEYS[3], '1', 'PX', ARGV[2])
return {0, redis.call('get', KEYS[1]) or ''}
"""
# KEYS: lock, fence. ARGV: owner, lease ms, token, fence ttl ms. -> 1 if still ours (renewed), else 0
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] and redis.call('get', KEYS[2]) == ARGV[3] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  redis.call('pexpire', KEYS[2], ARGV[4])
  return 1
end
return 0
"""
# KEYS: lock, waiting. ARGV: owner, channel, upload id. -> 1 if released, else 0; announced if awaited
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  if redis.call('del', KEYS[2]) == 1 then
    redis.call('publish', ARGV[2], ARGV[3])
  end
  return 1
end
return 0
"""

_SCRIPTS = {"acquire": _ACQUIRE, "renew": _RENEW, "release": _RELEASE}


def _lock_key(upload_id: str) -> str:
    return f"{PREFIX}lock:{upload_id}"


def _fence_key(upload_id: str) -> str:
    return f"{PREFIX}fence:{upload_id}"


def _waiting_key(upload_id: str) -> str:
    return f"{PREFIX}waiting:{upload_id}"


@dataclass(eq=False)
class RedisFence:
    """One holding of one upload's lock: its owner value, its fencing token, its renewals."""

    locker: RedisLocker
    upload_id: str
    owner: str
    token: int
    on_release_request: Callable[[], None] | None = None
    asked: bool = False
    lost: bool = False
    renewer: asyncio.Task[None] | None = field(default=None, repr=False)

    def ask_to_let_go(self) -> None:
        if not self.asked:
            self.asked = True
            if self.on_release_request is not None:
                self.on_release_request()

    async def check(self) -> None:
        if self.lost:
            raise FenceLost("this request lost the upload's lock (its lease ran out); nothing more is kept")
        try:
            still_ours = await self.locker.renew(self)
        except RedisError as exc:
            raise FenceLost(f"the lock service cannot confirm this request's lock: {exc}", unreachable=True) from exc
        if not still_ours:
            self.mark_lost()
            raise FenceLost(
                "another request holds the upload's lock now (this one's lease ran out); nothing more is kept"
            )

    def mark_lost(self) -> None:
        if not self.lost:
            self.lost = True
            log.warning("upload lock lost", upload_id=self.upload_id, token=self.token)
            self.ask_to_let_go()  # end the body stream: nothing more can be committed anyway


class RedisLocker(Locker):
    def __init__(self, url: str, *, timeout: float = 3.0, lease: float = 10.0) -> None:
        self._url = url
        self._timeout = timeout
        self._lease_ms = int(lease * 1000)
        self._redis: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._instance = secrets.token_hex(8)
        self._held: dict[str, RedisFence] = {}
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._bus: asyncio.Task[None] | None = None
        self._closing = False
        self.bus_ready = asyncio.Event()

    @property
    def where(self) -> str:
        """The Redis address without credentials, for messages."""
        if self._redis is None:
            return "Redis"
        kwargs = self._redis.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"Redis at {kwargs['path']}"
        return f"Redis at {kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and subscribe; raise :class:`LockServiceError` if Redis cannot be reached."""
        try:
            self._redis = aioredis.from_url(
                self._url, socket_timeout=COMMAND_TIMEOUT, socket_connect_timeout=COMMAND_TIMEOUT, decode_responses=True
            )
        except ValueError as exc:  # not a redis://, rediss:// or unix:// URL
            raise LockServiceError(f"invalid Redis URL: {exc}") from None
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            await self._redis.aclose()
            self._redis = None
            raise LockServiceError(f"cannot reach Redis for upload locks: {exc}") from exc
        self._scripts = {name: self._redis.register_script(body) for name, body in _SCRIPTS.items()}
        self._bus = asyncio.create_task(self._listen())

    async def close(self) -> None:
        self._closing = True
        if self._bus is not None:
            # redis-py's get_message can swallow a cancellation; the flag ends the loop within a second.
            self._bus.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._bus, 5)
            self._bus = None
        for hold in list(self._held.values()):
            if hold.renewer is not None:
                hold.renewer.cancel()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def probe(self) -> None:
        await self.redis.ping()

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("RedisLocker.start() was not called")
        return self._redis

    # -- pub/sub -------------------------------------------------------------------------------
    async def _listen(self) -> None:
        """One subscription for the whole locker, re-established after a lost connection."""
        delay = 0.2
        while not self._closing:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(REQUESTS_CHANNEL, RELEASED_CHANNEL)
                confirmed = 0
                while not self._closing:
                    # A bounded wait: a blocking read would end with the socket timeout anyway.
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        confirmed += 1
                        if confirmed == 2:  # from here on no announcement is missed
                            self.bus_ready.set()
                            delay = 0.2
                    elif message["type"] == "message":
                        self._on_message(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.bus_ready.is_set():
                    log.warning("lock subscription lost; waiters poll until it is back", error=str(exc))
                self.bus_ready.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                self.bus_ready.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _on_message(self, channel: str, upload_id: str) -> None:
        if channel == REQUESTS_CHANNEL:
            hold = self._held.get(upload_id)
            if hold is not None:
                hold.ask_to_let_go()
        elif channel == RELEASED_CHANNEL:
            self._wake(upload_id)

    def _wake(self, upload_id: str) -> None:
        for event in self._waiters.get(upload_id, ()):
            event.set()

    # -- scripts -------------------------------------------------------------------------------
    async def _try(self, upload_id: str, owner: str) -> tuple[bool, str | int]:
        try:
            got, value = await self._scripts["acquire"](
                keys=[_lock_key(upload_id), _fence_key(upload_id), _waiting_key(upload_id)],
                args=[owner, self._lease_ms, FENCE_KEY_TTL_MS],
            )
        except (RedisError, OSError) as exc:
            raise LockUnavailable(f"{self.where} cannot be reached") from exc
        return bool(got), value

    async def renew(self, hold: RedisFence) -> bool:
        """Extend the lease if ``hold`` still owns it and no newer token exists (raises RedisError)."""
        result = await self._scripts["renew"](
            keys=[_lock_key(hold.upload_id), _fence_key(hold.upload_id)],
            args=[hold.owner, self._lease_ms, str(hold.token), FENCE_KEY_TTL_MS],
        )
        return bool(result)

    async def _renew_while_held(self, hold: RedisFence) -> None:
        """Renew every third of the lease; a holder that cannot renew for a whole lease has lost it."""
        loop = asyncio.get_running_loop()
        interval = self._lease_ms / 3000
        confirmed = loop.time()
        while not hold.lost:
            await asyncio.sleep(interval)
            try:
                if not await self.renew(hold):
                    hold.mark_lost()
                    return
                confirmed = loop.time()
            except (RedisError, OSError) as exc:
                if loop.time() - confirmed >= self._lease_ms / 1000:
                    log.warning("upload lock not renewed within its lease", upload_id=hold.upload_id, error=str(exc))
                    hold.mark_lost()
                    return

    async def _release(self, hold: RedisFence) -> None:
        if hold.renewer is not None:
            hold.renewer.cancel()
        if self._held.get(hold.upload_id) is hold:
            del self._held[hold.upload_id]
        self._wake(hold.upload_id)  # waiters of this instance need no round trip
        try:
            await self._scripts["release"](
                keys=[_lock_key(hold.upload_id), _waiting_key(hold.upload_id)],
                args=[hold.owner, RELEASED_CHANNEL, hold.upload_id],
            )
        except (RedisError, OSError) as exc:
            # The lease runs out by itself; until then others wait (or get 423), never write.
            log.warning(
                "could not release an upload lock; its lease will expire", upload_id=hold.upload_id, error=str(exc)
            )

    def _hold(
        self, upload_id: str, owner: str, token: int, on_release_request: Callable[[], None] | None
    ) -> RedisFence:
        hold = RedisFence(self, upload_id, owner, token, on_release_request)
        hold.renewer = asyncio.create_task(self._renew_while_held(hold))
        self._held[upload_id] = hold
        return hold

    # -- the Locker interface ------------------------------------------------------------------
    @asynccontextmanager
    async def lock(self, upload_id: str, on_release_request: Callable[[], None] | None = None) -> AsyncIterator[Fence]:
        hold = await self._acquire(upload_id, on_release_request)
        try:
            yield hold
        finally:
            await self._release(hold)

    @asynccontextmanager
    async def try_lock(self, upload_id: str) -> AsyncIterator[Fence]:
        owner = self._new_owner()
        got, value = await self._try(upload_id, owner)
        if not got:
            raise UploadLocked()
        hold = self._hold(upload_id, owner, int(value), None)
        try:
            yield hold
        finally:
            await self._release(hold)

    def is_locked(self, upload_id: str) -> bool:
        return upload_id in self._held

    def _new_owner(self) -> str:
        return f"{self._instance}:{secrets.token_hex(6)}"

    async def _acquire(self, upload_id: str, on_release_request: Callable[[], None] | None) -> RedisFence:
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + self._timeout
        owner = self._new_owner()
        woken = asyncio.Event()
        self._waiters.setdefault(upload_id, set()).add(woken)  # before trying: no release is missed
        asked: set[str] = set()
        contended = False
        try:
            while True:
                woken.clear()
                got, value = await self._try(upload_id, owner)
                if got:
                    break
                contended = True
                holder = str(value)
                if holder not in asked:
                    asked.add(holder)
                    metrics.LOCK_TAKEOVERS.inc()
                    await self._ask(upload_id)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    metrics.LOCK_TIMEOUTS.inc()
                    raise UploadLocked()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(remaining, POLL_INTERVAL))
        finally:
            waiters = self._waiters[upload_id]
            waiters.discard(woken)
            if not waiters:
                del self._waiters[upload_id]
        if contended:
            metrics.LOCK_WAIT.observe(loop.time() - began)
        return self._hold(upload_id, owner, int(value), on_release_request)

    async def _ask(self, upload_id: str) -> None:
        """Ask the holder, wherever it runs, to let go (directly when it is in this process)."""
        local = self._held.get(upload_id)
        if local is not None:
            local.ask_to_let_go()
            return
        try:
            await self.redis.publish(REQUESTS_CHANNEL, upload_id)
        except (RedisError, OSError) as exc:
            raise LockUnavailable(f"{self.where} cannot be reached") from exc


class LockServiceError(Exception):
    """The shared lock service is unusable at start-up (the server refuses to start)."""
