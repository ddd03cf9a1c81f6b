"""``Reconciler``: state-store writes that must land eventually, retried while the database is down.

When an upload's last byte is stored, its bytes are safe whatever happens to the state database;
what must not be lost is the *record* of it: the recording becoming ``uploaded`` with its job,
the quota claim settling at the final size, a terminated upload leaving the ledger and the
recordings. Those writes are idempotent, so when one fails with
:class:`~tusd_py.model.errors.StateStoreUnavailable` it is kept here, under a key naming what it does
(``"<kind>:<upload id>"``), and retried with backoff (``first_delay`` doubling up to
``max_delay``) until it succeeds: once PostgreSQL is back, finished uploads are recorded without
a restart of tusd-py. A later action with the same key replaces a pending one; actions run in the
order they were first deferred, and while one about an upload waits, later ones about the same
upload wait behind it.

This lives in memory: a process that dies with pending actions loses them. The upload's bytes
and its finished state in storage are kept, but its recording may stay ``uploading`` (never
processed) and its quota claim unsettled (counted as unfinished) until the upload is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from tusd_py.model.errors import StateStoreUnavailable

log = structlog.get_logger(__name__)

Action = Callable[[], Awaitable[object]]


class Reconciler:
    def __init__(self, *, first_delay: float = 0.5, max_delay: float = 10.0) -> None:
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._pending: dict[str, Action] = {}
        self._kick = asyncio.Event()

    @property
    def pending(self) -> list[str]:
        return list(self._pending)

    async def attempt(self, key: str, action: Action) -> bool:
        """Run ``action`` now; if the state store is unreachable, keep it for retries. True if it ran."""
        if key in self._pending:  # an older attempt is waiting: this one replaces it, in order
            self._pending[key] = action
            return False
        if self._waiting_for(key):
            # An earlier write about the same upload waits: this one goes after it, or a finish
            # retried after a termination would bring a deleted upload's recording back.
            self._pending[key] = action
            self._kick.set()
            return False
        try:
            await action()
        except StateStoreUnavailable as exc:
            log.warning("state store unreachable; will retry", action=key, error=exc.detail)
            self._pending[key] = action
            self._kick.set()
            return False
        return True

    def _waiting_for(self, key: str) -> bool:
        subject = key.rpartition(":")[2]
        return any(pending.rpartition(":")[2] == subject for pending in self._pending)

    async def run_pending(self) -> int:
        """Retry every pending action once, in order; stop at the first still unreachable. Returns how many ran."""
        done = 0
        for key in list(self._pending):
            action = self._pending.get(key)
            if action is None:
                continue
            try:
                await action()
            except StateStoreUnavailable:
                return done
            except Exception:
                log.exception("deferred state-store action failed; dropped", action=key)
            if self._pending.get(key) is action:
                del self._pending[key]
            done += 1
        if done:
            log.info("deferred state-store actions applied", count=done)
        return done

    async def run(self) -> None:
        """The background loop: wait for work, retry with backoff until nothing is pending."""
        while True:
            await self._kick.wait()
            self._kick.clear()
            delay = self.first_delay
            while self._pending:
                await asyncio.sleep(delay)
                before = len(self._pending)
                await self.run_pending()
                delay = self.first_delay if len(self._pending) < before else min(self.max_delay, delay * 2)

    async def drain(self, within: float) -> None:
        """At shutdown: one last try for what is pending, bounded by ``within`` seconds."""
        if self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.run_pending(), within)
            if self._pending:
                log.warning("state-store actions not applied at shutdown", actions=list(self._pending))
