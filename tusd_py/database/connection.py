"""``Database``: the PostgreSQL connection pool shared by the recording store and the quota ledger.

Driver: asyncpg. It is asyncio-native (no thread per connection), speaks the binary protocol
with prepared statements (the job claim and the quota reservation run on every upload), and has
a built-in pool and LISTEN/NOTIFY callbacks, which is all this needs.

Every use goes through :meth:`Database.transaction` (several statements, one transaction) or
:meth:`Database.connection` (one statement, in autocommit: no BEGIN/COMMIT round trips), which
turn "the database cannot be reached" (refused connection, a server shutting down or restarting, a connection dropped
mid-statement, a timeout) into :class:`~tusd_py.model.errors.StateStoreUnavailable` (503 with a
reason). The pool replaces broken connections on the next acquire, so once PostgreSQL is back
the next call works: no restart of tusd-py. :attr:`Database.available` tells whether the last
call reached the database.

A connection goes back to the pool without asyncpg's reset query (``pg_advisory_unlock_all()``,
``CLOSE ALL``, ``UNLISTEN *``, ``RESET ALL``: four statements per use): no pooled connection is
ever given session state. Migrations take their advisory lock on a connection of their own,
LISTEN runs on a dedicated one, nothing runs ``SET`` or opens a cursor outside a transaction. An
unfinished transaction (a cancelled caller) is still rolled back by asyncpg before reuse.

:meth:`Database.listen` keeps one dedicated connection LISTENing on a channel and calls back on
every notification, and also after it (re)connects, since notifications sent while it was
disconnected are lost: the callback must treat a wake-up as "look again", never as a message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeAlias

import asyncpg
import structlog

from tusd_py.database.migrations import migrate
from tusd_py.model.errors import StateStoreUnavailable

log = structlog.get_logger(__name__)

#: What "cannot reach the database" looks like from asyncpg (class 08 and 57 errors, the socket).
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
)

#: A connection as the pool lends it (the queries of the stores run on these).
Conn: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

LISTEN_RETRY = 2.0  # seconds between attempts to re-establish a lost LISTEN connection


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing to undo (see the module docstring); asyncpg has already rolled
    back a transaction left open."""


class Database:
    def __init__(
        self,
        url: str,
        *,
        min_size: int = 0,  # no floor to restore: asyncpg would log a traceback for it during an outage
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 15.0,
    ) -> None:
        self.url = url
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._users = 0
        self._listeners: list[asyncio.Task[None]] = []
        self.available = False

    async def open(self) -> None:
        """Connect and migrate the schema; reference-counted, so the store and the ledger share it."""
        self._users += 1
        if self._pool is not None:
            return
        try:
            conn = await asyncpg.connect(self.url, timeout=self._connect_timeout)
            try:
                await migrate(conn)
            finally:
                await conn.close()
            pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                reset=_keep_session,
            )
        except UNREACHABLE as exc:
            self._users -= 1
            raise StateStoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        self._pool = pool
        self.available = True

    async def close(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users or self._pool is None:
            return
        for task in self._listeners:
            task.cancel()
        await asyncio.gather(*self._listeners, return_exceptions=True)
        self._listeners.clear()
        pool, self._pool = self._pool, None
        with contextlib.suppress(*UNREACHABLE):
            await asyncio.wait_for(pool.close(), timeout=5)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """One connection in one transaction; unreachable database -> StateStoreUnavailable."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """One connection in autocommit (each statement its own transaction, no BEGIN/COMMIT sent);
        unreachable database -> StateStoreUnavailable."""
        if self._pool is None:
            raise RuntimeError("database is not open")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except UNREACHABLE as exc:
            if self.available:
                log.warning("state database unreachable", error=f"{type(exc).__name__}: {exc}")
            self.available = False
            raise StateStoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not self.available:
            log.info("state database reachable again")
        self.available = True

    async def check(self) -> None:
        """Raise StateStoreUnavailable if the database was unreachable at the last call and still is.
        Free while it is reachable (no round trip); one ``SELECT 1`` while it is known to be down."""
        if self.available:
            return
        async with self.connection() as conn:
            await conn.execute("SELECT 1")

    def listen(self, channel: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` on every NOTIFY on ``channel`` (and after every reconnect) until close."""
        self._listeners.append(asyncio.create_task(self._listen(channel, callback), name=f"listen-{channel}"))

    async def _listen(self, channel: str, callback: Callable[[], None]) -> None:
        def on_notify(*_: Any) -> None:
            callback()

        lost = asyncio.Event()
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.url, timeout=self._connect_timeout)
                lost.clear()
                conn.add_termination_listener(lambda _conn: lost.set())
                await conn.add_listener(channel, on_notify)
                callback()  # whatever was announced while we were not listening
                while not conn.is_closed():  # the termination callback, and a check as a fallback
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=10)
            except UNREACHABLE as exc:
                log.debug("LISTEN connection failed; retrying", channel=channel, error=str(exc))
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(*UNREACHABLE):
                        await asyncio.wait_for(conn.close(), timeout=2)
            await asyncio.sleep(LISTEN_RETRY)
