"""The S3 ledger and part-planning maths (pure), and the part writer against an in-memory uploader."""

from __future__ import annotations

import asyncio
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage_backends.s3_budget import ByteBudget
from storage_backends.s3_ledger import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIB,
    MIN_PART_SIZE,
    Part,
    S3State,
    Segment,
    advance,
    choose_part_size,
    durable_offset,
    plan_copy,
    segment_starts,
    split_chunk,
)
from storage_backends.s3_objects import Body
from storage_backends.s3_parts import SPOOL_MEMORY, PartWriter


@given(preferred=st.integers(MIN_PART_SIZE, 64 * MIB), size=st.integers(0, 5 * 1024**4))
def test_part_size_covers_the_upload_in_10000_parts(preferred: int, size: int) -> None:
    part = choose_part_size(preferred, size)
    assert MIN_PART_SIZE <= part <= MAX_PART_SIZE
    assert part >= preferred
    assert part * MAX_PARTS >= size  # S3's maximum object (5 TiB) always fits
    assert part % MIB == 0 or part == preferred


@given(
    part_size=st.integers(1, 64),
    filled=st.integers(0, 63),
    chunk=st.integers(0, 300),
)
def test_split_chunk_completes_parts_exactly(part_size: int, filled: int, chunk: int) -> None:
    filled %= part_size
    pieces = split_chunk(filled, chunk, part_size)
    assert sum(pieces) == chunk
    level = filled
    for index, piece in enumerate(pieces):
        assert piece > 0
        level += piece
        if index < len(pieces) - 1:
            assert level == part_size  # every piece but the last fills its part exactly
            level = 0
    assert level <= part_size


def test_split_chunk_refuses_a_full_part() -> None:
    with pytest.raises(ValueError):
        split_chunk(8, 1, 8)


segments = st.lists(st.integers(1, 100), max_size=6)


@given(parts=st.lists(st.integers(1, 100), max_size=5), tail=segments, new=st.integers(0, 100))
def test_offset_and_segment_starts_follow_the_ledger(parts: list[int], tail: list[int], new: int) -> None:
    state = S3State(
        multipart_id="m",
        part_size=100,
        parts=[Part(size, "e") for size in parts],
        tail=[Segment(size, "s") for size in tail],
    )
    assert durable_offset(state) == sum(parts) + sum(tail)
    starts = segment_starts(state)
    assert starts == [sum(parts) + sum(tail[:i]) for i in range(len(tail))]
    grown = advance(state, [], False, Segment(new, "n"))
    assert durable_offset(grown) == durable_offset(state) + new
    if tail:
        promoted = advance(state, [Part(sum(tail) + new, "p")], True, None)
        assert promoted.tail == []
        assert durable_offset(promoted) == durable_offset(state) + new


def test_advance_rejects_impossible_ledgers() -> None:
    state = S3State(multipart_id="m", part_size=5, tail=[Segment(3, "s")])
    with pytest.raises(ValueError):
        advance(state, [], True, None)
    state.completed = True
    with pytest.raises(ValueError):
        advance(state, [Part(5, "e")], False, None)


@given(sizes=st.lists(st.integers(0, 40 * MIB), min_size=1, max_size=6), max_part=st.integers(10 * MIB, 30 * MIB))
def test_copy_plan_is_valid_for_s3_or_refused(sizes: list[int], max_part: int) -> None:
    plan = plan_copy(sizes, max_part)
    present = [size for size in sizes if size > 0]
    if any(size < MIN_PART_SIZE for size in present[:-1]):
        assert plan is None
        return
    assert plan is not None
    # Ranges tile each source exactly, in order.
    rebuilt: dict[int, int] = {}
    for item in plan:
        assert item.start == rebuilt.get(item.source, 0)
        rebuilt[item.source] = item.end
    assert rebuilt == {index: size for index, size in enumerate(sizes) if size > 0}
    assert [item.source for item in plan] == sorted(item.source for item in plan)
    for item in plan[:-1]:
        assert MIN_PART_SIZE <= item.end - item.start <= max_part
    if plan:
        assert item_size(plan[-1]) <= max_part


def item_size(item: object) -> int:
    return item.end - item.start  # type: ignore[attr-defined, no-any-return]


@settings(max_examples=60, deadline=None)
@given(
    tail=st.binary(max_size=40),
    chunk_sizes=st.lists(st.integers(1, 70), max_size=12),
    concurrency=st.integers(1, 3),
    final=st.booleans(),
    spool_memory=st.sampled_from([0, 17, SPOOL_MEMORY]),
)
def test_part_writer_cuts_exact_parts_and_keeps_order(
    tail: bytes, chunk_sizes: list[int], concurrency: int, final: bool, spool_memory: int
) -> None:
    """Bytes of (tail + body) come out as parts of exactly part_size, in order, plus a leftover,
    whether the part being filled is spooled in memory or to a file; never more than
    ``concurrency`` uploads run at once, and the budget is all returned."""
    part_size = 41
    body = bytes(i % 251 for i in range(sum(chunk_sizes)))
    uploaded: dict[int, bytes] = {}
    running = 0
    peak = 0

    async def upload(number: int, data: Body) -> Part:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        uploaded[number] = data.getvalue() if isinstance(data, io.BytesIO) else bytes(data)
        return Part(len(uploaded[number]), f"e{number}")

    async def fetch_tail(into: memoryview) -> None:
        into[:] = tail

    budget = ByteBudget(part_size * concurrency)

    async def run() -> tuple[list[Part], bool, bytes]:
        writer = PartWriter(
            part_size=part_size,
            first_number=3,
            tail_size=len(tail),
            budget=budget,
            upload_part=upload,
            fetch_tail=fetch_tail,
            spool_memory=spool_memory,
        )
        position = 0
        for size in chunk_sizes:
            await writer.feed(body[position : position + size])
            position += size
        if final:
            await writer.flush_last_part()
        landed, failure = await writer.settle()
        assert failure is None
        async with writer.leftover() as leftover:
            kept = bytes(leftover)
        writer.close()
        return landed, writer.tail_consumed, kept

    landed, consumed, leftover = asyncio.run(run())
    assert peak <= concurrency
    assert budget.in_use == 0
    assert budget.peak <= part_size * concurrency
    assert sorted(uploaded) == list(range(3, 3 + len(landed)))
    joined = b"".join(uploaded[n] for n in sorted(uploaded))
    assert all(len(uploaded[n]) == part_size for n in sorted(uploaded)[: -1 if final else None])
    if not tail:
        assert not consumed and joined + leftover == body
    elif consumed:
        assert joined + leftover == tail + body
    else:
        assert not landed
        assert leftover == body and len(tail) + len(body) < part_size
    if final:
        assert leftover == b""
