"""The whole-upload SHA-256, computed while bytes stream in rather than by re-reading the file.

hashlib cannot serialise a hash's internal state, so the running digest lives in memory, keyed
by upload and tagged with the offset it covers. A PATCH extends it only when it starts exactly
where the digest ends; a request whose bytes were rejected (checksum mismatch) never touches it.
If the digest is missing when the upload finishes (server restarted mid-upload, cache evicted),
the finisher computes it with one sequential read of the stored bytes instead.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class RunningDigest:
    offset: int
    hasher: hashlib._Hash

    def update(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.offset += len(chunk)


class DigestCache:
    def __init__(self, max_entries: int = 50_000) -> None:
        self._entries: OrderedDict[str, RunningDigest] = OrderedDict()
        self._max_entries = max_entries

    def begin(self, upload_id: str, offset: int) -> RunningDigest | None:
        """A private copy of the running digest if it covers exactly ``[0, offset)``; else None."""
        current = self._entries.get(upload_id)
        if offset == 0:
            return RunningDigest(0, hashlib.sha256())
        if current is None or current.offset != offset:
            return None
        return RunningDigest(current.offset, current.hasher.copy())

    def commit(self, upload_id: str, digest: RunningDigest | None, stored_offset: int) -> None:
        """Keep ``digest`` only if it covers exactly the bytes the store reports as stored."""
        if digest is None or digest.offset != stored_offset:
            self._entries.pop(upload_id, None)
            return
        self._entries[upload_id] = digest
        self._entries.move_to_end(upload_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def pop(self, upload_id: str) -> RunningDigest | None:
        return self._entries.pop(upload_id, None)
