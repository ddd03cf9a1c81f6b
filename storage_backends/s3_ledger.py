"""The S3 backend's part ledger and part planning, as pure functions (no I/O).

An upload's bytes live in three places, always in this order:

1. completed multipart parts, recorded in the ledger (``parts``: size and ETag; number = index + 1);
2. tail segments: small objects holding bytes that do not yet fill a part (``tail``), because S3
   refuses parts under 5 MiB except the last one, and phones send 1 MiB PATCHes;
3. nothing else: the durable offset is ``sum(parts) + sum(tail)``, computed from the info object
   alone, so HEAD costs one GET.

Every part except the last is exactly ``part_size`` bytes, so 10,000 parts cover
``10,000 * part_size``; :func:`choose_part_size` raises the part size to make that hold.

Byte budget: a byte reaches S3 once inside a part, or once inside a tail segment and once more
when the tail is promoted into a part: at most twice, never the quadratic re-upload of a growing
tail. (See ``tests/s3/test_s3_ledger.py``.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

MIB = 1024 * 1024
#: S3's limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html).
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000


class Part(msgspec.Struct, array_like=True, frozen=True):
    """One uploaded multipart part; its number is its index in the ledger plus one."""

    size: int
    etag: str


class Segment(msgspec.Struct, array_like=True, frozen=True):
    """One tail object. Its key is derived from its start offset, so it needs no name here;
    the ETag lets a promotion detect a segment replaced behind our back (GET with If-Match)."""

    size: int
    etag: str


class S3State(msgspec.Struct, kw_only=True):
    """What the S3 backend keeps in ``UploadInfo.backend_state``."""

    part_size: int
    #: Empty until the first part is due: an upload that completes below one part never has one
    #: (its bytes go to the data object in one PutObject, recorded as its only "part").
    multipart_id: str = ""
    parts: list[Part] = msgspec.field(default_factory=list)
    tail: list[Segment] = msgspec.field(default_factory=list)
    completed: bool = False  # the data object exists (CompleteMultipartUpload, or one PutObject) and was recorded


def choose_part_size(preferred: int, expected_size: int) -> int:
    """The part size for an upload of up to ``expected_size`` bytes: ``preferred``, raised (to a
    whole MiB) so that ``MAX_PARTS`` parts hold it, and never above S3's 5 GiB part maximum."""
    needed = math.ceil(max(expected_size, 0) / MAX_PARTS)
    needed = math.ceil(needed / MIB) * MIB
    return min(max(preferred, MIN_PART_SIZE, needed), MAX_PART_SIZE)


def parts_total(state: S3State) -> int:
    return sum(part.size for part in state.parts)


def tail_total(state: S3State) -> int:
    return sum(segment.size for segment in state.tail)


def durable_offset(state: S3State) -> int:
    """Bytes durably in S3 according to the ledger: the only offset the backend ever reports."""
    return parts_total(state) + tail_total(state)


def segment_starts(state: S3State) -> list[int]:
    """The upload offset at which each tail segment starts (their object keys are built from it)."""
    starts: list[int] = []
    position = parts_total(state)
    for segment in state.tail:
        starts.append(position)
        position += segment.size
    return starts


def split_chunk(filled: int, chunk_len: int, part_size: int) -> list[int]:
    """Cut an incoming chunk into pieces: each piece but the last completes the part being
    filled (``filled`` bytes so far, tail included); the last piece may leave it partly filled.

    ``filled`` is always below ``part_size``: a full part is emitted as soon as it is full.
    """
    if not 0 <= filled < part_size:
        raise ValueError(f"filled={filled} must be in [0, {part_size})")
    pieces: list[int] = []
    remaining = chunk_len
    room = part_size - filled
    while remaining > 0:
        take = min(room, remaining)
        pieces.append(take)
        remaining -= take
        room = part_size
    return pieces


def advance(
    state: S3State,
    new_parts: Sequence[Part],
    tail_consumed: bool,
    new_segment: Segment | None,
    *,
    whole_object: bool = False,
) -> S3State:
    """The ledger after a write: new parts appended; the old tail dropped if the first new part
    carried it; the write's leftover bytes (if any) appended as a tail segment. ``whole_object``:
    the only new part is the whole upload, put as the data object itself, so it is completed."""
    if whole_object and (len(new_parts) != 1 or state.parts or state.multipart_id or new_segment is not None):
        raise ValueError("only the one and only part of an upload without a multipart upload is a whole object")
    if tail_consumed and not new_parts:
        raise ValueError("the tail can only be consumed by a new part")
    if state.completed:
        raise ValueError("a completed upload takes no more bytes")
    tail = [] if tail_consumed else list(state.tail)
    if new_segment is not None and new_segment.size > 0:
        tail.append(new_segment)
    return S3State(
        multipart_id=state.multipart_id,
        part_size=state.part_size,
        parts=[*state.parts, *new_parts],
        tail=tail,
        completed=whole_object,
    )


class CopyRange(msgspec.Struct, frozen=True):
    """One UploadPartCopy: bytes ``[start, end)`` of source number ``source``."""

    source: int
    start: int
    end: int


def plan_copy(sizes: Sequence[int], max_part: int = MAX_PART_SIZE) -> list[CopyRange] | None:
    """Part-copy ranges that rebuild the concatenation of objects of ``sizes``, or ``None`` when
    server-side copy cannot do it: every part but the last must be at least 5 MiB, so every
    non-empty source but the last must be too. Large sources are split into equal ranges of at
    most ``max_part`` bytes (each above ``max_part / 2``, so at least 5 MiB for S3's 5 GiB maximum)."""
    present = [(index, size) for index, size in enumerate(sizes) if size > 0]
    if any(size < MIN_PART_SIZE for _, size in present[:-1]):
        return None
    ranges: list[CopyRange] = []
    for index, size in present:
        count = math.ceil(size / max_part)
        base, extra = divmod(size, count)  # sizes differ by at most one byte
        start = 0
        for number in range(count):
            end = start + base + (1 if number < extra else 0)
            ranges.append(CopyRange(index, start, end))
            start = end
    if len(ranges) > MAX_PARTS:
        return None
    return ranges


def check_part_number(number: int) -> None:
    if number > MAX_PARTS:
        raise ValueError(f"part {number} would exceed S3's {MAX_PARTS} parts; the part size is too small")
