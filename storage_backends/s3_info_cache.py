"""The info objects this process wrote, kept so that reading them back costs no S3 request.

Valid only while this process is the only writer under the prefix (``S3Config.sole_writer``:
the in-process locker, one process, no ``--redis-url``): then the info object in S3 is always the
last one this store put, and a HEAD or the load at the start of a PATCH can answer from memory.
With a shared lock other instances write too, and every read goes to S3.

What is kept is the encoded object exactly as the PUT sent it, so every reader decodes its own
copy. An entry is dropped whenever its PUT failed (it may or may not have landed) and before a
termination deletes the object, so a miss always reads S3, never a stale guess.
"""

from __future__ import annotations

from tusd_py.model.bounded import BoundedLRU

#: About 1 KiB per entry: a few MiB for the uploads in progress of a busy process.
DEFAULT_ENTRIES = 4096


class InfoCache:
    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self._encoded: BoundedLRU[str, bytes] = BoundedLRU(max(1, entries))
        #: Counts puts and discards: a GET that began before one of them may hold an older object.
        self.writes = 0

    def get(self, upload_id: str) -> bytes | None:
        return self._encoded.get(upload_id)

    def put(self, upload_id: str, encoded: bytes) -> None:
        """What a successful PUT of this process sent."""
        self.writes += 1
        self._keep(upload_id, encoded)

    def fill(self, upload_id: str, encoded: bytes, *, writes_before: int) -> None:
        """What a GET read, kept only if no put or discard happened while it was in flight (its
        answer could be older than that write)."""
        if self.writes == writes_before:
            self._keep(upload_id, encoded)

    def discard(self, upload_id: str) -> None:
        self.writes += 1
        self._encoded.pop(upload_id)

    def _keep(self, upload_id: str, encoded: bytes) -> None:
        self._encoded.put(upload_id, encoded)

    def __len__(self) -> int:
        return len(self._encoded)


class NoInfoCache(InfoCache):
    """Several writers: nothing is kept, every read goes to S3."""

    def __init__(self) -> None:
        super().__init__(0)

    def _keep(self, upload_id: str, encoded: bytes) -> None:
        pass


class InfoVersions:
    """The ETag of each info object as this process last read or wrote it, bounded (least recently
    used first out). A PUT of the info object is conditional on it (If-Match), so it lands only over
    the version this writer knows; an id not remembered is written unconditionally, as before."""

    def __init__(self, size: int = 16384) -> None:
        self._etags: BoundedLRU[str, str] = BoundedLRU(size)

    def seen(self, upload_id: str, etag: str) -> None:
        if etag:
            self._etags.put(upload_id, etag)

    def get(self, upload_id: str) -> str | None:
        return self._etags.get(upload_id)

    def pop(self, upload_id: str) -> str | None:
        """The version a write expects, forgotten until the write says what it made (a failed
        write may have landed: the next one then goes unconditionally rather than on a stale tag)."""
        return self._etags.pop(upload_id)
