"""Group commit for the SQLite recording store: operations queued meanwhile share one transaction.

Every store call used to be one hop to the store's thread and one COMMIT; a small upload makes
four to six of them (created, uploaded, claim, complete, an idle worker's look for more). Calls
that queue while a batch is pending now run together in one ``BEGIN IMMEDIATE ... COMMIT``, each
in its own SAVEPOINT so a failing one rolls back only itself (its outbox events with it). Results
are delivered only after the COMMIT, so no caller ever sees a change that could still be rolled
back; if the COMMIT fails, every operation of the batch fails with it, as one transaction does.

Where a batch runs: with ``inline`` (one process owns the file), on the event loop, as one
callback after the calls of the current loop pass have queued. A transaction of a small upload
takes tens of microseconds; the hop to the store's thread and back (a futex wake-up, the event
loop's self-pipe, a GIL hand-over) cost more than that, 2.25 hops per upload in bench/ small.
What can block stays off the loop:

- the WAL checkpoint (it syncs the files): automatic checkpoints are off, and every
  ``CHECKPOINT_EVERY`` commits one runs on the store's thread, the queue waiting behind it;
- another process holding the write lock (``tusd-py cleanup`` on the same file): inline, the busy
  timeout is 0, so ``BEGIN IMMEDIATE`` answers "locked" at once and the batch goes to the thread,
  which waits for the lock with the store's busy timeout;
- a batch that waited longer than ``SLOW_BATCH`` anyway (a slow disk): the following batches run
  on the thread for ``THREAD_AFTER_SLOW`` seconds, then inline is tried again.

Without ``inline`` (``--processes N`` share the file, so the lock is often another's) every batch
runs on the thread, as before. One batch runs at a time, inline or on the thread: the queue has one
drainer.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")

#: An inline batch slower than this that waited (the disk) sends the following batches to the
#: thread for THREAD_AFTER_SLOW seconds. A batch that was only preempted (a loaded machine) does
#: not count: on 2 busy cores that took 5-20 ms now and then, and sent half of bench/ small's
#: batches to the thread. The kernel tells the two apart: a wait is a voluntary context switch.
SLOW_BATCH = 0.005
THREAD_AFTER_SLOW = 2.0
_THIS_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
#: Commits between two checkpoints when the batches run inline (SQLite's automatic checkpoint, at
#: 1,000 pages, is off then: it would sync on the event loop). A small upload's commits write a
#: few pages each, so the WAL stays about as short as with the automatic checkpoint.
CHECKPOINT_EVERY = 200


class Operation(NamedTuple):
    fn: Callable[..., Any]  # fn(conn, *args), run inside the transaction
    args: tuple[Any, ...]
    write: bool
    future: asyncio.Future[Any]


Outcome = tuple[Operation, Any, BaseException | None]


class Busy(Exception):
    """Another connection holds the write lock (an inline ``BEGIN IMMEDIATE`` does not wait)."""


class GroupCommit:
    def __init__(
        self,
        connection: Callable[[], sqlite3.Connection | None],
        *,
        inline: bool = False,
        busy_timeout_ms: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``inline``: batches may run on the event loop (see the module docstring); the
        connection must then allow use from the loop's thread (``check_same_thread=False``) and is
        set up by :meth:`prepare`. ``busy_timeout_ms``: how long the thread waits for the lock."""
        self._connection = connection
        self.inline = inline
        self._busy_timeout_ms = busy_timeout_ms
        self._clock = clock
        self._queue: list[Operation] = []  # guarded by _lock, like _draining
        self._lock = threading.Lock()
        self._draining = False
        self._threaded_until = -float("inf")
        self._commits = 0  # since the last checkpoint; touched only by the one drainer

    def prepare(self, conn: sqlite3.Connection) -> None:
        """On a new connection: no automatic checkpoint, no busy wait (inline batches only)."""
        if self.inline:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA busy_timeout = 0")

    async def run(self, executor: Executor, fn: Callable[..., T], args: tuple[Any, ...], write: bool) -> T:
        """Queue ``fn(conn, *args)``; the next batch runs it (inline, or on the store's one-thread ``executor``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queue.append(Operation(fn, args, write, future))
            start, self._draining = not self._draining, True
        if start:
            if self.inline and self._clock() >= self._threaded_until:
                loop.call_soon(self._drain_inline, loop, executor)
            else:
                executor.submit(self._drain, loop, executor)
        return await future

    def _drain_inline(self, loop: asyncio.AbstractEventLoop, executor: Executor) -> None:
        """On the event loop: the queued operations as one batch, or hand them to the thread."""
        with self._lock:
            batch, self._queue = self._queue, []
        started, waits = time.perf_counter(), _waits()
        try:
            outcomes = self.transaction(batch, wait=False)
        except Busy:
            self._threaded_until = self._clock() + THREAD_AFTER_SLOW
            with self._lock:
                self._queue[:0] = batch  # nothing of it ran: first in line on the thread
            executor.submit(self._drain, loop, executor)
            return
        except BaseException as exc:  # never leave a caller waiting on a future nobody resolves
            outcomes = [(op, None, exc) for op in batch]
        if time.perf_counter() - started > SLOW_BATCH and _waits() > waits:
            self._threaded_until = self._clock() + THREAD_AFTER_SLOW
        _deliver(outcomes)
        if self._commits >= CHECKPOINT_EVERY:
            executor.submit(self._drain, loop, executor)  # the checkpoint first, then the queue
            return
        with self._lock:
            if not self._queue:
                self._draining = False
                return
        loop.call_soon(self._drain_inline, loop, executor)

    def _drain(self, loop: asyncio.AbstractEventLoop, executor: Executor) -> None:
        """On the store's thread: a checkpoint when due, then a batch per transaction until the
        queue is empty, or until batches may run inline again (the loop takes the queue over)."""
        while True:
            if self.inline and self._commits >= CHECKPOINT_EVERY:
                self._checkpoint()
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._draining = False
                    return
                if self.inline and self._clock() >= self._threaded_until:
                    self._queue[:0] = batch
                    loop.call_soon_threadsafe(self._drain_inline, loop, executor)
                    return
            loop.call_soon_threadsafe(_deliver, self.transaction(batch))

    def _checkpoint(self) -> None:
        self._commits = 0
        conn = self._connection()
        if conn is not None:
            # Best effort (passive: it waits for no reader); the next one copies what this one left.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def transaction(self, batch: list[Operation], *, wait: bool = True) -> list[Outcome]:
        """Run ``batch`` as one transaction. ``wait=False`` (inline): raise :class:`Busy`, having
        run nothing, if another connection holds the write lock; with ``wait`` the connection's
        busy timeout is the store's for the length of the batch."""
        conn = self._connection()
        if conn is None:
            error = RuntimeError("store is not open")
            return [(op, None, error) for op in batch]
        begin = "BEGIN IMMEDIATE" if any(op.write for op in batch) else "BEGIN"
        if not wait:
            try:
                conn.execute(begin)
            except BaseException as exc:
                if isinstance(exc, sqlite3.OperationalError) and not conn.in_transaction and _busy(exc):
                    raise Busy(str(exc)) from None
                return [(op, None, exc) for op in batch]
            return self._operations(conn, batch)
        if self.inline:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        try:
            try:
                conn.execute(begin)
            except BaseException as exc:
                return [(op, None, exc) for op in batch]
            return self._operations(conn, batch)
        finally:
            if self.inline:
                conn.execute("PRAGMA busy_timeout = 0")

    def _operations(self, conn: sqlite3.Connection, batch: list[Operation]) -> list[Outcome]:
        """Inside the batch's transaction: each operation in its savepoint, then the COMMIT."""
        outcomes: list[Outcome] = []
        try:
            for op in batch:
                conn.execute("SAVEPOINT operation")
                try:
                    result = op.fn(conn, *op.args)
                except Exception as exc:
                    # Undo this operation only; if SQLite already ended the transaction, this
                    # raises and the whole batch fails below, as one transaction does.
                    conn.execute("ROLLBACK TO operation")
                    conn.execute("RELEASE operation")
                    outcomes.append((op, None, exc))
                    continue
                conn.execute("RELEASE operation")
                outcomes.append((op, result, None))
            conn.execute("COMMIT")
        except BaseException as exc:  # the batch is one transaction: it fails as one
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(op, None, exc) for op in batch]
        self._commits += 1
        return outcomes


def _waits() -> int:
    """How often this thread has waited (voluntary context switches: I/O, a lock)."""
    return resource.getrusage(_THIS_THREAD).ru_nvcsw


def _busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY: "database is locked" (another connection writes)."""
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_BUSY" or "locked" in str(exc)


def _deliver(outcomes: list[Outcome]) -> None:
    """On the event loop, after the batch's COMMIT: hand each caller its result or error."""
    for op, result, error in outcomes:
        if op.future.cancelled():
            continue  # its caller gave up waiting; the operation ran (or failed) all the same
        if error is not None:
            op.future.set_exception(error)
        else:
            op.future.set_result(result)
