"""The filesystem backend's fence: the newest lock holder's token, kept beside the upload.

``<id>.fence`` holds the highest fencing token that ever wrote to the upload (8 bytes, big
endian). Every batch a fenced write appends is written under an exclusive ``flock`` of that file,
after two checks made under the same flock:

- the stored token is not newer than the writer's (a newer holder wrote already: refuse), and is
  then raised to the writer's, so from the first batch of a new holder on every older holder is
  refused;
- the data file still ends where this write expects it to (``expected_size``): an older holder
  that slipped a batch in between the new holder's read of the offset and its first batch is
  caught here, and the new holder refuses to append after bytes its client does not know about.

Check and write happen under one flock, so on the filesystem no pause can come between them. The
flock is held only for one batch's ``writev``. The fence file is opened, and a batch written under
a free flock, on the event loop (microseconds in the page cache, less than a hand-off to a
thread and back); only a flock another holder has is waited for in a thread. On a network file
system the flock must reach the server (NFSv4 maps it to a byte-range lock; see the README on
shared directories).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from storage_backends.file_sweep import FENCE_SUFFIX
from tusd_py.model.fencing import FenceLost

__all__ = ["FENCE_SUFFIX", "FileFence"]
_WIDTH = 8


class FileFence:
    """Use as a context manager (the fd). The file is opened (made if missing) by the first
    :meth:`acquire`, where the first batch is written: making the fence costs no hop of its own."""

    def __init__(self, path: Path, token: int) -> None:
        self.path = path
        self.token = token
        self._opened: int | None = None

    @property
    def _fd(self) -> int:
        if self._opened is None:
            self._opened = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        return self._opened

    def close(self) -> None:
        if self._opened is not None:
            os.close(self._opened)
            self._opened = None

    def __enter__(self) -> FileFence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def held(self, data_fd: int, expected_size: int) -> Iterator[None]:
        """Under the flock: refuse a stale writer, record this one, then let the caller write."""
        self.acquire(data_fd, expected_size)
        try:
            yield
        finally:
            self.release()

    def acquire(self, data_fd: int, expected_size: int, *, wait: bool = True) -> bool:
        """Take the flock and make :meth:`held`'s checks (raising :class:`FenceLost`, the flock
        released). ``wait=False`` returns False at once, having done nothing, when another holder
        has the flock (the event loop then waits for it in a thread)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if wait:
                raise
            return False
        try:
            raw = os.pread(self._fd, _WIDTH, 0)
            stored = int.from_bytes(raw, "big") if len(raw) == _WIDTH else 0
            if stored > self.token:
                raise FenceLost("a newer holder of this upload's lock has written to it; this write stops")
            size = os.fstat(data_fd).st_size
            if size != expected_size:
                raise FenceLost(
                    f"the upload changed under this request (it has {size} bytes, this write expected "
                    f"{expected_size}); nothing more of it is kept"
                )
            if stored < self.token:
                os.pwrite(self._fd, self.token.to_bytes(_WIDTH, "big"), 0)
        except BaseException:
            self.release()
            raise
        return True

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
