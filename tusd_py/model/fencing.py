"""Fencing: a lock holder whose lock was lost (a paused or partitioned process) commits nothing.

A shared lock is a lease: a holder that stops (SIGSTOP, a long GC pause, a network partition)
for longer than the lease loses it without knowing, and another instance takes the upload over.
When the stale holder wakes up it must not commit an offset on top of the new holder's bytes.
The locker hands every write a :class:`Fence` taken with the lock; the backend calls
:meth:`Fence.check` right before each commit point (a batch appended to the data file, a part or
the info object on S3) and refuses the write when the check raises :class:`FenceLost`.

Backends know nothing of the locker behind a fence (Redis, or none): they only see a number that
grows with every new holder of one upload (``token``) and an async check.
"""

from __future__ import annotations

from typing import Protocol

from tusd_py.model.storage_errors import StorageError


class FenceLost(StorageError):
    """This writer no longer holds the upload's lock: the write stops, nothing more of it is kept.

    ``unreachable``: the lock service could not be asked (the write is refused all the same,
    since nothing may be written without a confirmed lock), as opposed to a newer holder.
    """

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


class Fence(Protocol):
    """What a write gets from the lock it runs under."""

    @property
    def token(self) -> int:
        """Grows with every new holder of the upload's lock; 0 means "no fencing" (one process)."""
        ...

    async def check(self) -> None:
        """Raise :class:`FenceLost` unless this holder still holds the lock, with a lease long
        enough for the commit that follows."""
        ...


class _NoFence:
    """The in-process locker's fence: one process cannot lose its own lock. Costs nothing."""

    token = 0

    async def check(self) -> None:
        return None


NO_FENCE: Fence = _NoFence()


async def confirm(fence: Fence | None) -> None:
    """Before a commit that changes an upload's state (info, finish, termination, assembly): a
    holder whose lease ran out commits nothing. Unfenced (None, token 0): no call at all."""
    if fence is not None and fence.token:
        await fence.check()
