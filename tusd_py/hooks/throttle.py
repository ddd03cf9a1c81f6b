"""Rate-limiting post-receive events: at most one per upload per interval, plus the final one.

A PATCH of a large file reports progress for every chunk it stores; sending each as a webhook
would flood the receiver. Memory stays bounded without a background sweeper: an entry older than
the interval means the same as no entry (the next event passes either way), so stale entries
are pruned whenever the table grows.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressThrottle:
    def __init__(
        self, interval: float = 1.0, *, clock: Callable[[], float] = time.monotonic, prune_at: int = 1024
    ) -> None:
        if interval < 0:
            raise ValueError("interval must not be negative")
        self.interval = interval
        self._clock = clock
        self._prune_at = prune_at
        self._last: dict[str, float] = {}

    def should_emit(self, upload_id: str, offset: int, length: int | None) -> bool:
        """True if a progress event for this upload should go out now (and records that it did)."""
        if length is not None and offset >= length:
            # The final event always goes out: receivers must see 100 %.
            self._last.pop(upload_id, None)
            return True
        now = self._clock()
        last = self._last.get(upload_id)
        if last is not None and now - last < self.interval:
            return False
        self._last[upload_id] = now
        if len(self._last) > self._prune_at:
            self._prune(now)
        return True

    def forget(self, upload_id: str) -> None:
        self._last.pop(upload_id, None)

    def __len__(self) -> int:
        return len(self._last)

    def _prune(self, now: float) -> None:
        self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
