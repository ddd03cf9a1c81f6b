"""The default :class:`RecordingStore`: one SQLite database file, in WAL mode.

The store's methods and rules are :class:`~tusd_py.pipeline.sql_store.SQLRecordingStore`'s; its
statements are :class:`~tusd_py.pipeline.sqlite_tables.SQLiteTables`'. This module adds only how
they run: one batch at a time, in one transaction per batch, over the only connection.

Operations that queue meanwhile share one transaction (group commit, see
:mod:`tusd_py.pipeline.sqlite_batches`): one savepoint each, results delivered after the COMMIT.
One batch at a time serialises this process's transactions (no "database is locked" between our
own coroutines). A process alone on the file runs its batches on the event loop (microseconds,
less than a hop to a thread) and sends what can block to the store's one thread: the WAL
checkpoint, a wait for another process's write lock, batches after a slow one. Several processes
on one file (``--processes N``, ``lease_seconds``) run every batch on the thread. Writers use
``BEGIN IMMEDIATE`` so that if a second process opens the same file, a read-then-write (claiming
a job) cannot interleave with another claim.

WAL lets readers (listing, stats) proceed while a writer commits; ``synchronous=NORMAL`` in WAL
mode keeps the database consistent across crashes and loses at most the last commits on power
loss, the same durability the filesystem backend gives upload bytes without ``fsync``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from tusd_py.pipeline import sqlite_leases
from tusd_py.pipeline.sql_store import Script, SQLRecordingStore
from tusd_py.pipeline.sqlite_batches import GroupCommit
from tusd_py.pipeline.sqlite_schema import SCHEMA, SCHEMA_VERSION
from tusd_py.pipeline.sqlite_tables import SQLiteTables
from tusd_py.pipeline.transactions import run_to_end

log = structlog.get_logger(__name__)

T = TypeVar("T")


def _switch_to_wal(conn: sqlite3.Connection, within: float) -> None:
    """WAL mode, waiting for a sibling that is switching the same file right now: the workers of
    ``--processes N`` open it together, and the switch answers "database is locked" at once
    instead of calling the busy handler. Bounded by the busy timeout."""
    deadline = time.monotonic() + within
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _nothing(conn: sqlite3.Connection) -> None:
    return None


class SQLiteRecordingStore(SQLRecordingStore):
    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 5000,
        lease_seconds: float | None = None,
    ) -> None:
        """``lease_seconds``: the file is shared by several processes (``--processes N``), so jobs
        are claimed with a lease of that length (:mod:`tusd_py.pipeline.sqlite_leases`)."""
        self.path = Path(path)
        if lease_seconds is not None:
            self.uses_leases = True
            self.lease_seconds = lease_seconds
            self.instance = uuid.uuid4().hex
        self._clock = clock
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        # One process alone on the file: batches run on the event loop (sqlite_batches.py), unless
        # a COMMIT syncs the disk (synchronous FULL or EXTRA: it would stall the loop each time).
        inline = lease_seconds is None and synchronous.upper() in ("NORMAL", "OFF")
        self._batches = GroupCommit(lambda: self._conn, inline=inline, busy_timeout_ms=busy_timeout_ms)

    # -- plumbing --------------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        if self._executor is None:
            raise RuntimeError("store is not open")
        return await self._batches.run(self._executor, fn, args, write)

    async def _transact(self, script: Script[T], *, write: bool = True, atomic: bool = True) -> T:
        # Every script is atomic here: each runs in its own savepoint of the batch's transaction.
        return await self._run(
            lambda conn: run_to_end(script(SQLiteTables(conn, leases=self.uses_leases))), write=write
        )

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so each method is one transaction.
        # check_same_thread=False: inline batches use it on the event loop's thread; the group
        # commit runs one batch at a time, so the connection is never used by two threads at once.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        _switch_to_wal(conn, self._busy_timeout_ms / 1000)
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(SCHEMA)
        sqlite_leases.migrate(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._batches.prepare(conn)
        self._conn = conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline-sqlite")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        log.info("recording store opened", path=str(self.path))

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # Batches go to the thread from now on, and the last one queued runs before the connection
        # closes (an inline batch on the loop never overlaps the close on the thread).
        self._batches.inline = False
        await self._batches.run(executor, _nothing, (), False)
        await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        executor.shutdown(wait=False)
