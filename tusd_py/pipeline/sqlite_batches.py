"""Group commit for the SQLite recording store: operations queued meanwhile share one transaction.

Every store call used to be one hop to the store's thread and one COMMIT; a small upload makes
four to six of them (created, uploaded, claim, complete, an idle worker's look for more). Calls
that queue while the thread is busy now run together in one ``BEGIN IMMEDIATE ... COMMIT``, each
in its own SAVEPOINT so a failing one rolls back only itself (its outbox events with it), with
one wake-up of the event loop for the batch. Results are delivered only after the COMMIT, so no
caller ever sees a change that could still be rolled back; if the COMMIT fails, every operation
of the batch fails with it, as one transaction does.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")


class Operation(NamedTuple):
    fn: Callable[..., Any]  # fn(conn, *args), run inside the transaction
    args: tuple[Any, ...]
    write: bool
    future: asyncio.Future[Any]


Outcome = tuple[Operation, Any, BaseException | None]


class GroupCommit:
    def __init__(self, connection: Callable[[], sqlite3.Connection | None]) -> None:
        self._connection = connection
        self._queue: list[Operation] = []  # guarded by _lock, like _draining
        self._lock = threading.Lock()
        self._draining = False

    async def run(self, executor: Executor, fn: Callable[..., T], args: tuple[Any, ...], write: bool) -> T:
        """Queue ``fn(conn, *args)``; the store's one-thread ``executor`` runs it in the next batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queue.append(Operation(fn, args, write, future))
            start, self._draining = not self._draining, True
        if start:
            executor.submit(self._drain, loop)
        return await future

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the store's thread: a batch per transaction, until the queue is empty."""
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._draining = False
                    return
            loop.call_soon_threadsafe(_deliver, self.transaction(batch))

    def transaction(self, batch: list[Operation]) -> list[Outcome]:
        conn = self._connection()
        if conn is None:
            error = RuntimeError("store is not open")
            return [(op, None, error) for op in batch]
        outcomes: list[Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE" if any(op.write for op in batch) else "BEGIN")
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
        return outcomes


def _deliver(outcomes: list[Outcome]) -> None:
    """On the event loop, after the batch's COMMIT: hand each caller its result or error."""
    for op, result, error in outcomes:
        if op.future.cancelled():
            continue  # its caller gave up waiting; the operation ran (or failed) all the same
        if error is not None:
            op.future.set_exception(error)
        else:
            op.future.set_result(result)
