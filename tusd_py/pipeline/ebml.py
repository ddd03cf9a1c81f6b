"""Just enough EBML to describe a WebM/Matroska audio file without a demuxer.

mutagen does not read Matroska, so this walks the element tree of the first bytes: the EBML header
(``DocType``: ``webm`` or ``matroska``), then in the Segment the ``Info`` element (``TimestampScale``,
``Duration``) and the first audio ``TrackEntry`` (``CodecID``, ``SamplingFrequency``, ``Channels``).
It stops at the first ``Cluster``: everything it needs comes before media data in files written by
ffmpeg and browsers. Browser MediaRecorder files have no ``Duration`` (they are written live): for
them :func:`last_block_ticks` reads the file's tail instead, where the last Cluster's Timestamp plus
its last block's relative timestamp says when the last frame starts.

Element ids keep their length marker (as the Matroska spec lists them); sizes drop it, and a size
of all ones means "unknown" (a live stream), which is allowed only for master elements.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import msgspec

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_DOC_TYPE = 0x4282
_SEGMENT = 0x18538067
_INFO = 0x1549A966
_TIMESTAMP_SCALE = 0x2AD7B1
_DURATION = 0x4489
_TRACKS = 0x1654AE6B
_TRACK_ENTRY = 0xAE
_TRACK_TYPE = 0x83
_CODEC_ID = 0x86
_AUDIO = 0xE1
_SAMPLING_FREQUENCY = 0xB5
_CHANNELS = 0x9F
_CLUSTER = 0x1F43B675
_CLUSTER_TIMESTAMP = 0xE7
_SIMPLE_BLOCK = 0xA3
_BLOCK_GROUP = 0xA0
_BLOCK = 0xA1
_AUDIO_TRACK = 2
#: How far from the end :func:`last_block_ticks` looks for the last Cluster (browsers start one per ~5 s).
TAIL_SIZE = 256 * 1024


class EBMLError(ValueError):
    """The bytes are not well-formed EBML where we needed them to be."""


class MatroskaInfo(msgspec.Struct, kw_only=True):
    doc_type: str | None = None
    duration: float | None = None  # seconds
    timestamp_scale: int = 1_000_000  # nanoseconds per tick
    codec_id: str | None = None  # e.g. "A_OPUS", "A_VORBIS", "A_PCM/INT/LIT"
    sample_rate: int | None = None
    channels: int | None = None
    warnings: list[str] = msgspec.field(default_factory=list)


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int, bool]:
    """Decode a variable-length integer at ``pos``: (value, length, all value bits set)."""
    if pos >= len(data):
        raise EBMLError("truncated element header")
    first = data[pos]
    if first == 0:
        raise EBMLError("invalid variable-length integer")
    length = 9 - first.bit_length()  # the count of leading zero bits, plus one
    if pos + length > len(data):
        raise EBMLError("truncated element header")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    all_ones = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, all_ones


def _elements(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int | None]]:
    """Children in ``data[start:end]`` as (id, payload start, payload end or None if unknown).

    A generator, so a caller that stops at the first Cluster never parses what follows it.
    """
    pos = start
    while pos < end:
        element_id, id_len, _ = _vint(data, pos, keep_marker=True)
        size, size_len, unknown = _vint(data, pos + id_len, keep_marker=False)
        payload = pos + id_len + size_len
        if unknown:
            yield element_id, payload, None
            return  # an unknown-size element runs to the end of its parent
        yield element_id, payload, payload + size
        pos = payload + size


def _uint(payload: bytes) -> int:
    return int.from_bytes(payload, "big") if payload else 0


def _float(payload: bytes) -> float | None:
    if len(payload) == 4:
        return float(struct.unpack(">f", payload)[0])
    if len(payload) == 8:
        return float(struct.unpack(">d", payload)[0])
    return None


def doc_type(head: bytes) -> str | None:
    """The DocType of the EBML header at the start of ``head``, or None if unreadable."""
    try:
        first = next(_elements(head, 0, len(head)), None)
        if first is None or first[0] != int.from_bytes(EBML_MAGIC, "big"):
            return None
        _, start, end = first
        for element_id, child_start, child_end in _elements(head, start, end or len(head)):
            if element_id == _DOC_TYPE:
                return head[child_start:child_end].rstrip(b"\0").decode("ascii", "replace")
    except EBMLError:
        return None
    return None


def parse(data: bytes) -> MatroskaInfo:
    """Describe the file whose first bytes are ``data``; never raises on malformed input."""
    info = MatroskaInfo(doc_type=doc_type(data))
    scale = 1_000_000  # nanoseconds per timestamp tick: the spec's default TimestampScale
    raw_duration: float | None = None
    try:
        for element_id, start, end in _elements(data, 0, len(data)):
            if element_id != _SEGMENT:
                continue
            for child_id, child_start, child_end in _elements(data, start, min(end or len(data), len(data))):
                stop = min(child_end or len(data), len(data))
                if child_id == _CLUSTER:
                    break
                if child_id == _INFO:
                    for leaf_id, leaf_start, leaf_end in _elements(data, child_start, stop):
                        payload = data[leaf_start:leaf_end]
                        if leaf_id == _TIMESTAMP_SCALE:
                            scale = _uint(payload) or scale
                        elif leaf_id == _DURATION:
                            raw_duration = _float(payload)
                elif child_id == _TRACKS:
                    _read_tracks(data, child_start, stop, info)
            break
    except EBMLError as exc:
        info.warnings.append(f"matroska: {exc}; later elements not read")
    info.timestamp_scale = scale
    if raw_duration is not None and raw_duration > 0:
        info.duration = raw_duration * scale / 1e9
    return info


def last_block_ticks(tail: bytes) -> int | None:
    """When the last block of the file whose last bytes are ``tail`` starts, in TimestampScale ticks.

    "The Block timestamp is a signed integer that represents the Raw Timestamp relative to the
    Cluster's Timestamp" (RFC 9559, 10.1), and a Cluster's Timestamp is its first child in every
    writer we know of; a candidate Cluster id without one is a chance match in the media data.
    """
    pos = len(tail)
    marker = _CLUSTER.to_bytes(4, "big")
    while (pos := tail.rfind(marker, 0, pos)) >= 0:
        ticks = _cluster_last_ticks(tail, pos)
        if ticks is not None:
            return ticks
    return None


def _cluster_last_ticks(data: bytes, pos: int) -> int | None:
    try:
        _, id_len, _ = _vint(data, pos, keep_marker=True)
        size, size_len, unknown = _vint(data, pos + id_len, keep_marker=False)
    except EBMLError:
        return None
    start = pos + id_len + size_len
    end = len(data) if unknown else min(start + size, len(data))
    base: int | None = None
    last: int | None = None
    try:
        for child_id, child_start, child_end in _elements(data, start, end):
            if base is None:
                if child_id != _CLUSTER_TIMESTAMP:
                    return None
                base = _uint(data[child_start:child_end])
                continue
            if child_id == _BLOCK_GROUP:
                blocks = [(s, e) for i, s, e in _elements(data, child_start, min(child_end or end, end)) if i == _BLOCK]
                child_start = blocks[0][0] if blocks else -1
            elif child_id != _SIMPLE_BLOCK:
                continue
            if child_start >= 0:
                _, track_len, _ = _vint(data, child_start, keep_marker=False)
                relative = data[child_start + track_len : child_start + track_len + 2]
                if len(relative) == 2:
                    last = int.from_bytes(relative, "big", signed=True)
    except EBMLError:
        pass  # a block cut by the end of the tail: the ones before it stand
    if base is None:
        return None
    return base + (last or 0)


def _read_tracks(data: bytes, start: int, end: int, info: MatroskaInfo) -> None:
    for entry_id, entry_start, entry_end in _elements(data, start, end):
        if entry_id != _TRACK_ENTRY or info.codec_id is not None:
            continue
        fields = {child: (s, e) for child, s, e in _elements(data, entry_start, min(entry_end or end, end))}
        if _TRACK_TYPE in fields and _uint(data[slice(*fields[_TRACK_TYPE])]) != _AUDIO_TRACK:
            continue
        if _CODEC_ID in fields:
            info.codec_id = data[slice(*fields[_CODEC_ID])].rstrip(b"\0").decode("ascii", "replace")
        if _AUDIO in fields:
            audio_start, audio_end = fields[_AUDIO]
            for leaf_id, leaf_start, leaf_end in _elements(data, audio_start, audio_end or end):
                payload = data[leaf_start:leaf_end]
                if leaf_id == _SAMPLING_FREQUENCY:
                    rate = _float(payload)
                    info.sample_rate = int(rate) if rate else None
                elif leaf_id == _CHANNELS:
                    info.channels = _uint(payload) or None
