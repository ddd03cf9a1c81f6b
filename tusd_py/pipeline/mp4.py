"""The duration of an ISO base media (MP4) file, counted from its samples, fragmented or not.

Browsers record MP4 *fragmented* (ISO/IEC 14496-12, 8.8): Chromium's and Safari's MediaRecorder
write a ``moov`` before any audio exists, so its ``mvhd``/``mdhd`` durations are 0 or a guess, and
the audio follows in ``moof`` + ``mdat`` pairs. A reader that trusts the header (mutagen) sees a
file of ~0 s. Here the audio track's samples are counted instead: those described in the ``moov``
sample table (``stts``), plus, in each ``moof``, every ``traf`` of that track and its ``trun`` runs,
each sample's duration taken from the run, else the ``tfhd`` default, else the ``trex`` default
(8.8.3: the defaults cascade in that order), in the track's ``mdhd`` timescale.

The duration is the span of the decode timeline: from the first sample's decode time to the end of
the last one counted, each fragment starting at its ``tfdt`` (8.8.12) when it has one, else where
the previous ended. It differs from the plain sum of durations where a writer guessed: Chromium
cannot know a fragment's last frame's duration when it closes the fragment and writes ~21 ms for a
60 ms Opus frame; the next fragment's ``tfdt`` says where it really ended (ffmpeg reads it so too).
Decode times that overlap fall back to the sum; a gap of more than a tenth is kept, with a warning.

A fragment's sample counts only if its bytes are in the file: a recording cut mid-fragment (a
browser killed, an upload stopped) keeps the complete samples before the cut. The offsets follow 8.8.7.1 and
8.8.8.1: a run's data starts at its ``data_offset`` from the fragment's base (explicit, or the
``moof``'s first byte), else right after the previous run's data. ``mehd`` (the whole movie's
fragment duration, in the ``mvhd`` timescale, written only by a writer that knew it) is a
cross-check: a disagreement is a warning, the counted samples stand.

Only the top-level boxes are read from the file, by seeking, so a long recording costs one small
read per fragment; ``mdat`` payloads are skipped. Every loop is bounded by the bytes it walks (a
box is at least its 8-byte header) or by an explicit cap, and no size is trusted beyond its parent
or the file. :func:`boxes` and the box parsers raise :class:`MP4Error` on malformed bytes;
:func:`read_movie` catches it, so over any bytes it returns what it could count and says why it
stopped in ``warnings``; it raises only what the file object raises (``OSError``).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

import msgspec

#: A ``moov`` holds the sample tables of a non-fragmented file (4-12 bytes per sample); this is hours of audio.
MAX_MOOV_SIZE = 64 * 1024 * 1024
#: A ``moof`` describes seconds of audio in kilobytes; one larger than this is not one we can trust.
MAX_MOOF_SIZE = 16 * 1024 * 1024
#: Top-level boxes walked at most (two per fragment): days of audio at one fragment per second.
MAX_TOP_LEVEL_BOXES = 1_000_000
_HEAD = 32  # enough for any box header: size, type, 64-bit size, uuid

# tfhd flags (8.8.7.1)
_BASE_DATA_OFFSET = 0x000001
_SAMPLE_DESCRIPTION_INDEX = 0x000002
_DEFAULT_DURATION = 0x000008
_DEFAULT_SIZE = 0x000010
_DEFAULT_FLAGS = 0x000020
_DEFAULT_BASE_IS_MOOF = 0x020000
# trun flags (8.8.8.1)
_DATA_OFFSET = 0x000001
_FIRST_SAMPLE_FLAGS = 0x000004
_SAMPLE_DURATION = 0x000100
_SAMPLE_SIZE = 0x000200
_SAMPLE_FLAGS = 0x000400
_SAMPLE_CTS = 0x000800


class MP4Error(ValueError):
    """The bytes are not well-formed ISO base media boxes where we needed them to be."""


class Track(msgspec.Struct, kw_only=True):
    """What one ``trak`` (and its ``trex``) says about counting its samples."""

    track_id: int = 0
    handler: bytes = b""  # b"soun" for audio (8.4.3)
    timescale: int = 0  # ``mdhd``: ticks per second
    ticks: int = 0  # samples described in the moov's ``stts``
    samples: int = 0
    default_duration: int | None = None  # from ``trex``
    default_size: int | None = None


class Movie(msgspec.Struct, kw_only=True):
    """The ``moov``: its tracks, and whether it announces fragments."""

    tracks: list[Track] = msgspec.field(default_factory=list)
    timescale: int = 0  # ``mvhd``
    has_mvex: bool = False
    fragment_duration: int | None = None  # ``mehd``, in the mvhd timescale

    def audio_track(self) -> Track | None:
        """The first sound track, else the first track (a recorder writes one)."""
        return next((t for t in self.tracks if t.handler == b"soun"), self.tracks[0] if self.tracks else None)


class MovieInfo(msgspec.Struct, kw_only=True):
    fragmented: bool = False  # an ``mvex`` in the moov, or ``moof`` boxes follow it
    track_id: int | None = None
    timescale: int | None = None
    samples: int = 0  # of the audio track, whose bytes are in the file
    ticks: int = 0  # their summed durations
    timeline_ticks: int = 0  # from the first sample's decode time to the end of the last one's
    fragments: int = 0  # ``moof`` boxes read
    duration: float | None = None  # seconds, from the counted samples
    declared_duration: float | None = None  # seconds, from ``mehd``
    warnings: list[str] = msgspec.field(default_factory=list)


def box_header(data: bytes, pos: int = 0, end: int | None = None) -> tuple[bytes, int, int | None]:
    """The box starting at ``data[pos:end]``: (type, header length, size or None for "to the end").

    4.2: a 32-bit size of 1 means a 64-bit size follows; 0 means the box runs to the end of the
    file; a ``uuid`` box carries a 16-byte extended type after its header.
    """
    end = len(data) if end is None else min(end, len(data))
    if pos + 8 > end:
        raise MP4Error("truncated box header")
    size, kind = struct.unpack_from(">I4s", data, pos)
    header = 8
    if size == 1:
        if pos + 16 > end:
            raise MP4Error("truncated 64-bit box size")
        size = struct.unpack_from(">Q", data, pos + 8)[0]
        header = 16
    if kind == b"uuid":
        header += 16
    if size == 0:
        return kind, header, None
    if size < header:
        raise MP4Error(f"box {_name(kind)} declares {size} bytes, less than its header")
    return kind, header, size


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """The boxes in ``data[start:end]`` as (type, payload start, box end); none may overrun ``end``."""
    end = len(data) if end is None else min(end, len(data))
    pos = start
    while pos < end:  # each box is at least 8 bytes, so this ends
        kind, header, size = box_header(data, pos, end)
        box_end = end if size is None else pos + size
        if box_end > end or pos + header > box_end:
            raise MP4Error(f"box {_name(kind)} at {pos} runs past its parent ({box_end} > {end})")
        yield kind, pos + header, box_end
        pos = box_end


def _name(kind: bytes) -> str:
    return repr(kind.decode("latin-1"))


def _full_box(data: bytes, start: int, end: int) -> tuple[int, int]:
    """(version, flags) of a full box whose payload is ``data[start:end]`` (4.2)."""
    if end - start < 4:
        raise MP4Error("full box shorter than its version and flags")
    return data[start], int.from_bytes(data[start + 1 : start + 4], "big")


def _uints(data: bytes, pos: int, end: int, *widths: int) -> list[int]:
    """Big-endian unsigned integers of these byte widths from ``pos``, all before ``end``."""
    values = []
    for width in widths:
        if pos + width > end:
            raise MP4Error("box shorter than its fields")
        values.append(int.from_bytes(data[pos : pos + width], "big"))
        pos += width
    return values


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in boxes(data, start, end) if k == kind), None)


def parse_moov(data: bytes) -> Movie:
    """The tracks, timescales and fragment defaults of the ``moov`` whose payload is ``data``."""
    movie = Movie()
    trex: dict[int, tuple[int, int]] = {}
    for kind, start, end in boxes(data):
        if kind == b"mvhd":
            version, _ = _full_box(data, start, end)
            # 8.2.2: creation and modification times, then the timescale (64-bit times in version 1).
            movie.timescale = _uints(data, start + 4 + (16 if version == 1 else 8), end, 4)[0]
        elif kind == b"trak":
            movie.tracks.append(_parse_trak(data, start, end))
        elif kind == b"mvex":
            movie.has_mvex = True
            for leaf, leaf_start, leaf_end in boxes(data, start, end):
                if leaf == b"trex":  # 8.8.3: track_ID, sample description index, duration, size, flags
                    track_id, _, duration, size = _uints(data, leaf_start + 4, leaf_end, 4, 4, 4, 4)
                    trex[track_id] = (duration, size)
                elif leaf == b"mehd":  # 8.8.2: fragment_duration, 64-bit in version 1
                    version, _ = _full_box(data, leaf_start, leaf_end)
                    movie.fragment_duration = _uints(data, leaf_start + 4, leaf_end, 8 if version == 1 else 4)[0]
    for track in movie.tracks:
        if track.track_id in trex:
            # Writers that give every run its own durations and sizes leave 0 here: no default.
            duration, size = trex[track.track_id]
            track.default_duration, track.default_size = duration or None, size or None
    return movie


def _parse_trak(data: bytes, start: int, end: int) -> Track:
    track = Track()
    for kind, child_start, child_end in boxes(data, start, end):
        if kind == b"tkhd":  # 8.3.2: after the times (64-bit in version 1) comes track_ID
            version, _ = _full_box(data, child_start, child_end)
            track.track_id = _uints(data, child_start + 4 + (16 if version == 1 else 8), child_end, 4)[0]
        elif kind == b"mdia":
            for leaf, leaf_start, leaf_end in boxes(data, child_start, child_end):
                if leaf == b"mdhd":  # 8.4.2: laid out as mvhd's times and timescale
                    version, _ = _full_box(data, leaf_start, leaf_end)
                    offset = leaf_start + 4 + (16 if version == 1 else 8)
                    track.timescale = _uints(data, offset, leaf_end, 4)[0]
                elif leaf == b"hdlr":  # 8.4.3: pre_defined, then handler_type
                    track.handler = data[leaf_start + 8 : leaf_start + 12]
                elif leaf == b"minf":
                    stbl = _child(data, leaf_start, leaf_end, b"stbl")
                    stts = _child(data, *stbl, b"stts") if stbl else None
                    if stts:
                        track.samples, track.ticks = _time_to_sample(data, *stts)
    return track


def _time_to_sample(data: bytes, start: int, end: int) -> tuple[int, int]:
    """(samples, ticks) in an ``stts`` (8.6.1.2): entry_count pairs of (sample_count, sample_delta)."""
    (count,) = _uints(data, start + 4, end, 4)
    if count > (end - start - 8) // 8:
        raise MP4Error(f"stts declares {count} entries, more than it holds")
    samples = ticks = 0
    for sample_count, delta in struct.iter_unpack(">II", data[start + 8 : start + 8 + 8 * count]):
        samples += sample_count
        ticks += sample_count * delta
    return samples, ticks


class Fragment(NamedTuple):
    """What one ``moof`` holds of the counted track."""

    samples: int  # whose bytes are in the file
    ticks: int  # their summed durations
    start: int  # decode time of its first sample: ``tfdt`` (8.8.12), else where the previous one ended
    end: int  # decode time after its last counted sample


def count_fragment(moof: bytes, moof_at: int, movie: Movie, track: Track, file_size: int, decode_at: int) -> Fragment:
    """What ``track`` has in the ``moof`` payload ``moof`` whose box starts at ``moof_at`` (absolute offsets).

    Only samples whose bytes end within ``file_size`` count. ``decode_at`` is where the previous
    fragment's samples ended, the decode time of this one's first sample if it has no ``tfdt``.
    """
    defaults = {t.track_id: t for t in movie.tracks}
    samples = ticks = 0
    start: int | None = None
    previous_end = moof_at  # 8.8.7.1: without an explicit base, the first traf's is the moof's first byte
    for kind, traf_start, traf_end in boxes(moof):
        if kind != b"traf":
            continue
        tfhd = _child(moof, traf_start, traf_end, b"tfhd")
        if tfhd is None:
            raise MP4Error("traf without tfhd")
        track_id, base, duration, size = _parse_tfhd(moof, *tfhd, moof_at, previous_end)
        wanted = track_id == track.track_id
        known = defaults.get(track_id)
        duration = duration if duration is not None else known.default_duration if known else None
        size = size if size is not None else known.default_size if known else None
        data_at = base
        for leaf, leaf_start, leaf_end in boxes(moof, traf_start, traf_end):
            if leaf == b"tfdt" and wanted:  # baseMediaDecodeTime, 64-bit in version 1
                version, _ = _full_box(moof, leaf_start, leaf_end)
                decode_at = _uints(moof, leaf_start + 4, leaf_end, 8 if version == 1 else 4)[0]
            elif leaf == b"trun":
                start = decode_at if start is None and wanted else start
                counted, run_ticks, data_at = _count_run(
                    moof, leaf_start, leaf_end, base, data_at, duration, size, file_size, wanted
                )
                samples += counted
                ticks += run_ticks
                decode_at += run_ticks
        previous_end = data_at
    return Fragment(samples, ticks, decode_at if start is None else start, decode_at)


def _parse_tfhd(
    data: bytes, start: int, end: int, moof_at: int, previous_end: int
) -> tuple[int, int, int | None, int | None]:
    """(track_ID, base data offset, default sample duration, default sample size) of a ``tfhd``."""
    _, flags = _full_box(data, start, end)
    (track_id,) = _uints(data, start + 4, end, 4)
    pos = start + 8
    base = moof_at if flags & _DEFAULT_BASE_IS_MOOF else previous_end
    if flags & _BASE_DATA_OFFSET:
        (base,) = _uints(data, pos, end, 8)
        pos += 8
    pos += 4 if flags & _SAMPLE_DESCRIPTION_INDEX else 0
    duration = size = None
    if flags & _DEFAULT_DURATION:
        (duration,) = _uints(data, pos, end, 4)
        pos += 4
    if flags & _DEFAULT_SIZE:
        (size,) = _uints(data, pos, end, 4)
    return track_id, base, duration, size


def _count_run(
    data: bytes,
    start: int,
    end: int,
    base: int,
    data_at: int,
    duration: int | None,
    size: int | None,
    file_size: int,
    wanted: bool,
) -> tuple[int, int, int]:
    """(samples, ticks, where the next run's data starts) for one ``trun`` (8.8.8)."""
    _, flags = _full_box(data, start, end)
    (count,) = _uints(data, start + 4, end, 4)
    pos = start + 8
    if flags & _DATA_OFFSET:
        offset = int.from_bytes(data[pos : pos + 4], "big", signed=True) if pos + 4 <= end else None
        if offset is None:
            raise MP4Error("trun shorter than its data offset")
        data_at = base + offset
        pos += 4
    pos += 4 if flags & _FIRST_SAMPLE_FLAGS else 0
    fields = [f for f in (_SAMPLE_DURATION, _SAMPLE_SIZE, _SAMPLE_FLAGS, _SAMPLE_CTS) if flags & f]
    if fields and count > (end - pos) // (4 * len(fields)):
        raise MP4Error(f"trun declares {count} samples, more than it holds")
    if wanted and duration is None and not flags & _SAMPLE_DURATION:
        raise MP4Error("no sample duration in the trun, tfhd or trex")
    if not flags & (_SAMPLE_DURATION | _SAMPLE_SIZE):
        # Every sample alike: arithmetic, not a loop over a count that may be 2**32 - 1.
        fit = count if not size else max(0, min(count, (file_size - data_at) // size))
        next_at = data_at + count * (size or 0)
        return (fit, fit * (duration or 0), next_at) if wanted else (0, 0, next_at)
    at_duration = fields.index(_SAMPLE_DURATION) if flags & _SAMPLE_DURATION else None
    at_size = fields.index(_SAMPLE_SIZE) if flags & _SAMPLE_SIZE else None
    samples = ticks = 0
    table = data[pos : pos + count * 4 * len(fields)]
    for entry in struct.iter_unpack(f">{len(fields)}I", table):
        data_at += entry[at_size] if at_size is not None else size or 0
        if wanted and data_at <= file_size:
            samples += 1
            ticks += entry[at_duration] if at_duration is not None else duration or 0
    return samples, ticks, data_at


def read_movie(handle: BinaryIO) -> MovieInfo:
    """Count the audio track's samples in the MP4 file open in ``handle``; never raises MP4Error."""
    file_size = handle.seek(0, os.SEEK_END)
    info = MovieInfo()
    movie: Movie | None = None
    track: Track | None = None
    timeline_start = timeline_end = 0  # decode times of the first sample and after the last one counted
    pos = 0
    try:
        for _ in range(MAX_TOP_LEVEL_BOXES):
            if pos >= file_size:
                break
            handle.seek(pos)
            kind, header, size = box_header(handle.read(_HEAD))
            end = file_size if size is None else pos + size
            if kind == b"moof":
                info.fragmented = True
            if end > file_size:
                info.warnings.append(
                    f"truncated: box {_name(kind)} at {pos} declares {end - pos} bytes, {file_size - pos} present"
                )
                if kind == b"moof":
                    info.warnings.append("the last fragment's header is cut: its samples are not counted")
                break
            if kind == b"moov" and movie is None:
                movie = parse_moov(_read_box(handle, pos + header, end, MAX_MOOV_SIZE, kind))
                info.fragmented = info.fragmented or movie.has_mvex
                track = movie.audio_track()
                if track is not None:
                    info.samples, info.ticks = track.samples, track.ticks
                    timeline_end = track.ticks
            elif kind == b"moof":
                if movie is None or track is None:
                    raise MP4Error("a fragment before the moov or its track")
                moof = _read_box(handle, pos + header, end, MAX_MOOF_SIZE, kind)
                fragment = count_fragment(moof, pos, movie, track, file_size, timeline_end)
                if info.fragments == 0 and not track.samples:
                    timeline_start = fragment.start  # a recording may start its decode times anywhere
                info.fragments += 1
                info.samples += fragment.samples
                info.ticks += fragment.ticks
                timeline_end = max(timeline_end, fragment.end)
            pos = end
        else:
            info.warnings.append(f"more than {MAX_TOP_LEVEL_BOXES} top-level boxes: the rest not counted")
    except MP4Error as exc:
        info.warnings.append(f"mp4: {exc}; later boxes not read")
    info.timeline_ticks = timeline_end - timeline_start
    _conclude(info, movie, track)
    return info


def _read_box(handle: BinaryIO, start: int, end: int, limit: int, kind: bytes) -> bytes:
    if end - start > limit:
        raise MP4Error(f"box {_name(kind)} of {end - start} bytes is larger than {limit}")
    handle.seek(start)
    return handle.read(end - start)


def _conclude(info: MovieInfo, movie: Movie | None, track: Track | None) -> None:
    if movie is None or track is None:
        info.warnings.append("mp4: no moov with a track: duration unknown")
        return
    info.track_id = track.track_id
    info.timescale = track.timescale or None
    if movie.fragment_duration and movie.timescale:
        info.declared_duration = movie.fragment_duration / movie.timescale
    if not track.timescale:
        info.warnings.append("mp4: the track's timescale is 0: duration unknown")
        return
    if not info.ticks:
        if info.fragmented:
            info.warnings.append("mp4: no complete sample in the file: duration unknown")
        return
    ticks = info.ticks
    if info.timeline_ticks >= ticks:
        # Chromium cannot know a fragment's last sample's duration when it writes it and puts a
        # guess (21 ms for 60 ms Opus frames); the next fragment's tfdt says where it really ended.
        gap = info.timeline_ticks - ticks
        if gap > 0.1 * info.timeline_ticks:
            info.warnings.append(f"mp4: {gap / track.timescale:.3f} s of the timeline has no samples")
        ticks = info.timeline_ticks
    else:
        info.warnings.append("mp4: the fragments' decode times overlap: their samples' durations counted")
    info.duration = ticks / track.timescale
    declared = info.declared_duration
    if declared is not None and abs(declared - info.duration) > max(0.1, 0.01 * declared):
        info.warnings.append(
            f"mp4: the samples last {info.duration:.3f} s, mehd declares {declared:.3f} s: the samples counted"
        )
