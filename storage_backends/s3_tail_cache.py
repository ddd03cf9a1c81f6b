"""The bytes of recently written tail segments, kept so that promoting a tail re-reads nothing.

A phone sending 1 MiB PATCHes builds each 8 MiB part out of seven tail segments (S3 parts are
>= 5 MiB), and the PATCH that fills the part used to GET all seven back to upload them inside it.
This process wrote those segments moments before, so it keeps their bytes, bounded in total
(least recently written dropped first). An entry is used only when the ledger's ETag for that key
is the ETag our own PUT returned: bytes another process wrote under the same key, or anything
after a restart, are simply read from S3 as before. Correctness never depends on the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

#: Enough for one upload's tail below an 8 MiB part with room to spare; a few MiB per busy phone.
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


class TailCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self.size = 0

    def put(self, key: str, etag: str, data: bytes) -> None:
        self.discard([key])
        if len(data) > self.max_bytes:
            return
        self._entries[key] = (etag, data)
        self.size += len(data)
        while self.size > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.size -= len(dropped)

    def get(self, key: str, etag: str) -> bytes | None:
        """The bytes our PUT stored under ``key``, if its ETag is still ``etag``; else None."""
        entry = self._entries.get(key)
        if entry is None or entry[0] != etag:
            return None
        return entry[1]

    def discard(self, keys: Iterable[str]) -> None:
        for key in keys:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self.size -= len(entry[1])
