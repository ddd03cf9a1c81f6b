"""HTTP Range for GET (RFC 9110, section 14): a single byte range, or the whole representation.

Multiple ranges would need multipart/byteranges, which no tus client or media player asks of an
upload server; they get the whole file (RFC 9110 allows ignoring Range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tusd_py.model.errors import TusError
from tusd_py.protocol.headers import MAX_REPRESENTABLE

# RFC 9110 DIGIT is ASCII only; Python's \d would also take other scripts' digits.
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


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
        suffix = _position(last)
        if suffix == 0 or total == 0:
            raise _unsatisfiable(total)
        return ByteRange(max(0, total - suffix), total)
    start = _position(first)
    end = total if not last else min(_position(last) + 1, total)
    if start >= total or (last and _position(last) < start):
        raise _unsatisfiable(total)
    return ByteRange(start, end)


def _position(digits: str) -> int:
    """A byte position, saturated just above anything storable.

    A position beyond any upload means the same whatever its exact value (RFC 9110 14.1.2: a
    last-pos past the end is the end; a first-pos past it is unsatisfiable), and saturating
    keeps int() away from thousands of digits, which Python refuses (ValueError, a 500).
    """
    significant = digits.lstrip("0")
    if len(significant) > len(str(MAX_REPRESENTABLE)):
        return MAX_REPRESENTABLE + 1
    return int(significant or "0")


def _unsatisfiable(total: int) -> TusError:
    return TusError(416, "requested range not satisfiable", {"Content-Range": f"bytes */{total}"})
