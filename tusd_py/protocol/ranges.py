"""HTTP Range for GET (RFC 9110, section 14): a single byte range, or the whole representation.

Multiple ranges would need multipart/byteranges, which no tus client or media player asks of an
upload server; they get the whole file (RFC 9110 allows ignoring Range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tusd_py.errors import TusError

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def size(self) -> int:
        return self.end - self.start

    def content_range(self, total: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{total}"


def parse_range(header: str | None, total: int) -> ByteRange | None:
    """Return the range to serve, ``None`` for the whole file; raise 416 if unsatisfiable."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None  # unknown unit, several ranges or junk: RFC 9110 lets us serve the whole file
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        suffix = int(last)
        if suffix == 0 or total == 0:
            raise _unsatisfiable(total)
        return ByteRange(max(0, total - suffix), total)
    start = int(first)
    end = total if not last else min(int(last) + 1, total)
    if start >= total or (last and int(last) < start):
        raise _unsatisfiable(total)
    return ByteRange(start, end)


def _unsatisfiable(total: int) -> TusError:
    return TusError(416, "requested range not satisfiable", {"Content-Range": f"bytes */{total}"})
