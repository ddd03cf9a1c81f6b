"""How fast one user may create uploads: a token bucket per user, in this process.

Every creation costs a file, a recording row, a job and webhook events, and an empty upload is
finished the moment it exists, so it never counts against the unfinished-uploads quota: without a
rate, a loop of ``POST Upload-Length: 0`` makes unlimited files, rows, jobs and events. The bucket
holds ``per_minute`` creations and refills continuously; with ``--processes N`` each process has
its own (the limit is then N times as loose, still a bound).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tusd_py.model.bounded import BoundedLRU
from tusd_py.model.error_codes import ErrorCode
from tusd_py.model.errors import TusError

#: Users whose buckets are remembered; the least recently active is forgotten first (a full bucket).
MAX_USERS = 65536


class CreationRate:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.clock = clock
        self._buckets: BoundedLRU[str, tuple[float, float]] = BoundedLRU(MAX_USERS)  # user -> (tokens, at)

    def wait_before_next(self, user: str) -> float:
        """Take one creation for ``user``: 0.0 if allowed now, else the seconds until one is (nothing taken)."""
        if self.capacity <= 0:
            return 0.0
        now = self.clock()
        tokens, at = self._buckets.get(user) or (self.capacity, now)
        tokens = min(self.capacity, tokens + (now - at) * self.per_second)
        if tokens < 1.0:
            self._buckets.put(user, (tokens, now))
            return (1.0 - tokens) / self.per_second
        self._buckets.put(user, (tokens - 1.0, now))
        return 0.0

    def take(self, user: str) -> None:
        """Raise 429 with Retry-After when ``user`` creates faster than the rate allows."""
        wait = self.wait_before_next(user)
        if wait > 0:
            raise TusError(
                429,
                f"too many uploads created: at most {self.capacity:g} per minute per user; retry in {wait:.1f} s",
                {"Retry-After": str(max(1, round(wait)))},
                code=ErrorCode.RATE_LIMITED,
            )
