"""MP4 duration from fragments: real files from ffmpeg measured against ffprobe, hand-built boxes, broken copies."""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import struct
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutagen.mp4 import MP4

from tusd_py.pipeline import mp4
from tusd_py.pipeline.analysis import Category, analyse_file
from tusd_py.pipeline.formats import AudioFormat

_SINE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3.5", "-ac", "1"]
_FRAGMENTS = ["-frag_duration", "500000"]  # half-second fragments: several moof + mdat pairs

#: name -> ffmpeg output options: the layouts browsers and streaming packagers write.
FILES: dict[str, list[str]] = {
    # Chromium's MediaRecorder `audio/mp4;codecs=opus`: an empty moov, then fragments based on their moof.
    "opus-frag.mp4": ["-c:a", "libopus", "-b:a", "32k", *_FRAGMENTS, "-movflags", "+empty_moov+default_base_moof"],
    "aac-frag.m4a": ["-c:a", "aac", "-b:a", "32k", *_FRAGMENTS, "-movflags", "+empty_moov+default_base_moof"],
    # tfhd with an explicit base-data-offset; then with neither offset nor default-base-is-moof.
    "aac-base-offset.m4a": ["-c:a", "aac", *_FRAGMENTS, "-movflags", "+empty_moov"],
    "aac-implicit-base.m4a": ["-c:a", "aac", *_FRAGMENTS, "-movflags", "+empty_moov+omit_tfhd_offset"],
    # Samples in the moov as well as in fragments (no empty_moov).
    "aac-moov-and-frags.m4a": ["-c:a", "aac", *_FRAGMENTS, "-movflags", "+frag_keyframe"],
    # Smooth Streaming: version-1 mdhd with an all-ones duration, trun offsets from the tfhd base.
    "aac.ismv": ["-c:a", "aac", "-f", "ismv"],
    "aac-plain.m4a": ["-c:a", "aac", "-b:a", "32k"],  # not fragmented: mutagen's duration, as before
}
FRAGMENTED = [name for name in FILES if name != "aac-plain.m4a"]
_mutagen_mp4: Callable[[Path], Any] = MP4  # untyped


def _ffprobe(path: Path, *entries: str) -> Any:
    ffprobe = shutil.which("ffprobe")
    assert ffprobe is not None
    done = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "a:0", *entries, "-of", "json", str(path)],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def mp4_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg and ffprobe are needed to generate test audio (apt-get install ffmpeg)")
    directory = tmp_path_factory.mktemp("mp4")
    for name, options in FILES.items():
        subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", "-y", *_SINE, *options, str(directory / name)], check=True, timeout=60
        )
    return directory


def _probed_seconds(path: Path) -> float:
    return float(_ffprobe(path, "-show_entries", "format=duration")["format"]["duration"])


@pytest.mark.parametrize("name", list(FILES))
def test_duration_matches_ffprobe(mp4_dir: Path, name: str) -> None:
    path = mp4_dir / name
    result = analyse_file(path)
    assert (result.format, result.category, result.errors) == (AudioFormat.MP4, Category.LOSSY, [])
    assert result.codec in ("Opus", "mp4a.40.2")
    # ffprobe trims the plain file's encoder priming (its edit list), which mutagen counts: one AAC frame.
    tolerance = 0.002 if name in FRAGMENTED else 1024 / 48000
    assert result.duration_seconds == pytest.approx(_probed_seconds(path), abs=tolerance)
    with path.open("rb") as handle:
        movie = mp4.read_movie(handle)
    assert movie.warnings == [] and movie.fragmented is (name in FRAGMENTED)
    if name in ("opus-frag.mp4", "aac-frag.m4a", "aac-base-offset.m4a", "aac-implicit-base.m4a"):
        assert movie.fragments >= 6  # 3.5 s in half-second fragments
        # The bug this fixes: the header, written before any audio, says (next to) nothing.
        assert _mutagen_mp4(path).info.length < 0.1


def _packets(path: Path) -> list[tuple[int, int, int]]:
    """(pts, byte position, size) of every audio packet, as ffmpeg's demuxer finds them."""
    found = _ffprobe(path, "-show_entries", "packet=pts,pos,size")["packets"]
    return [(int(p["pts"]), int(p["pos"]), int(p["size"])) for p in found]


def _complete_seconds(path: Path, cut: int, timescale: int) -> float:
    """What a copy cut to ``cut`` bytes holds by ffmpeg's account: the start of the first packet it lacks."""
    packets = _packets(path)
    kept = sum(1 for _, pos, size in packets if pos + size <= cut)
    if kept == len(packets):
        return _probed_seconds(path)
    return float(Fraction(packets[kept][0] - packets[0][0], timescale))


@pytest.mark.parametrize("name", ["opus-frag.mp4", "aac-base-offset.m4a", "aac-implicit-base.m4a"])
def test_a_cut_file_counts_the_complete_samples(mp4_dir: Path, tmp_path: Path, name: str) -> None:
    data = (mp4_dir / name).read_bytes()
    last_moof = data.rindex(b"moof") - 4
    mdat = data.index(b"mdat", last_moof) - 4
    mdat_end = mdat + struct.unpack(">I", data[mdat : mdat + 4])[0]  # an mfra may follow
    full = mp4.read_movie(io.BytesIO(data))
    assert full.timescale is not None and full.duration is not None
    durations: list[float] = []
    for cut in (last_moof, last_moof + 20, mdat + 8 + 1, (mdat + mdat_end) // 2, mdat_end - 1):
        path = tmp_path / f"cut-{cut}"
        path.write_bytes(data[:cut])
        result = analyse_file(path)
        expected = _complete_seconds(mp4_dir / name, cut, full.timescale)
        assert result.duration_seconds is not None
        assert result.duration_seconds == pytest.approx(expected, abs=1e-6), cut
        if cut != last_moof:  # a cut between boxes looks like a file that ends there
            assert any(w.startswith("truncated: box") for w in result.warnings), result.warnings
        durations.append(result.duration_seconds)
    assert durations == sorted(durations) and durations[-1] < full.duration
    assert durations[0] == durations[1]  # a cut moof counts none of its samples


# -- hand-built boxes ------------------------------------------------------------------------------


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big"), *parts)


def _moov(*, trex: tuple[int, int] = (0, 0), mehd: int | None = None, handler: bytes = b"soun") -> bytes:
    """One track (id 1) at 48 kHz in a movie at 1 kHz; ``trex`` gives default (duration, size)."""
    mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, 48000, 0), b"\0" * 4)
    hdlr = _full(b"hdlr", 0, 0, b"\0" * 4, handler, b"\0" * 13)
    stbl = _box(b"stbl", _full(b"stts", 0, 0, struct.pack(">I", 0)))
    trak = _box(
        b"trak",
        _full(b"tkhd", 0, 3, struct.pack(">III", 0, 0, 1), b"\0" * 68),
        _box(b"mdia", mdhd, hdlr, _box(b"minf", stbl)),
    )
    mvex = [_full(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, *trex, 0))]
    if mehd is not None:
        mvex.append(_full(b"mehd", 1, 0, struct.pack(">Q", mehd)))
    mvhd = _full(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, 0), b"\0" * 80)
    return _box(b"ftyp", b"iso5", b"\0\0\0\0") + _box(b"moov", mvhd, trak, _box(b"mvex", *mvex))


def _fragment(
    count: int,
    *,
    duration: int | None = None,
    size: int = 10,
    tfhd_duration: int | None = None,
    last_duration: int | None = None,
    tfdt: int | None = None,
) -> bytes:
    """A moof + mdat with ``count`` samples of ``size`` bytes, durations per sample or by default.

    ``last_duration`` replaces the last sample's, as Chromium writes it; ``tfdt`` is the decode time.
    """
    tfhd_flags, tfhd_fields = 0x020000, b""  # default-base-is-moof
    if tfhd_duration is not None:
        tfhd_flags |= 0x08
        tfhd_fields = struct.pack(">I", tfhd_duration)
    trun_flags = 0x000201 | (0x100 if duration is not None else 0)  # data offset, sizes, maybe durations
    durations = [duration] * count
    if last_duration is not None:
        durations[-1] = last_duration
    entries = b"".join(struct.pack(">II", d, size) if d is not None else struct.pack(">I", size) for d in durations)
    decode_time = [] if tfdt is None else [_full(b"tfdt", 1, 0, struct.pack(">Q", tfdt))]

    def moof(offset: int) -> bytes:
        trun = _full(b"trun", 0, trun_flags, struct.pack(">Ii", count, offset), entries)
        traf = _box(b"traf", _full(b"tfhd", 0, tfhd_flags, struct.pack(">I", 1), tfhd_fields), *decode_time, trun)
        return _box(b"moof", _full(b"mfhd", 0, 0, struct.pack(">I", 1)), traf)

    header = moof(0)
    return moof(len(header) + 8) + _box(b"mdat", b"\x55" * (count * size))


def _read(data: bytes) -> mp4.MovieInfo:
    return mp4.read_movie(io.BytesIO(data))


def test_durations_cascade_from_trun_to_tfhd_to_trex() -> None:
    per_sample = _read(_moov() + _fragment(50, duration=960) + _fragment(25, duration=1920))
    assert (per_sample.samples, per_sample.ticks, per_sample.fragments) == (75, 96_000, 2)
    assert per_sample.duration == 2.0 and per_sample.warnings == []
    assert _read(_moov(trex=(480, 10)) + _fragment(100, tfhd_duration=960)).duration == 2.0
    assert _read(_moov(trex=(480, 10)) + _fragment(100)).duration == 1.0
    missing = _read(_moov() + _fragment(100))
    assert missing.duration is None and "no sample duration" in missing.warnings[0]


def test_decode_times_say_where_a_fragment_really_ended() -> None:
    # Chromium writes each fragment's last 60 ms Opus frame as 21 ms (it cannot know the next
    # frame's time yet); the next fragment's tfdt puts it back on the timeline.
    def chromium(start: int) -> bytes:
        first = _fragment(35, duration=2880, last_duration=1008, tfdt=start)
        second = _fragment(35, duration=2880, last_duration=1008, tfdt=start + 35 * 2880)
        return _moov() + first + second

    info = _read(chromium(0))
    assert info.ticks == 2 * (34 * 2880 + 1008) and info.timeline_ticks == 35 * 2880 + 34 * 2880 + 1008
    assert info.duration == info.timeline_ticks / 48000 and info.warnings == []
    assert _read(chromium(48000 * 3600)).duration == info.duration  # decode times need not start at 0
    overlapping = _read(_moov() + _fragment(50, duration=960, tfdt=0) + _fragment(50, duration=960, tfdt=0))
    assert overlapping.duration == 2.0 and "overlap" in overlapping.warnings[0]
    gap = _read(_moov() + _fragment(50, duration=960, tfdt=0) + _fragment(50, duration=960, tfdt=48000 * 9))
    assert gap.duration == 10.0 and gap.warnings == ["mp4: 8.000 s of the timeline has no samples"]


def test_mehd_is_a_cross_check() -> None:
    agreed = _read(_moov(mehd=2000) + _fragment(100, duration=960))
    assert (agreed.duration, agreed.declared_duration, agreed.warnings) == (2.0, 2.0, [])
    cut = _read(_moov(mehd=5000) + _fragment(100, duration=960))
    assert cut.duration == 2.0 and cut.declared_duration == 5.0
    assert cut.warnings == ["mp4: the samples last 2.000 s, mehd declares 5.000 s: the samples counted"]


def test_the_sound_track_is_counted() -> None:
    video_only = _read(_moov(handler=b"vide") + _fragment(10, duration=960))
    assert video_only.duration == 0.2  # no sound track: the first track stands in


def test_arithmetic_runs_and_huge_counts() -> None:
    # No per-sample fields: every sample takes the defaults, however many the run declares.
    moof = _box(b"moof", _box(b"traf", _full(b"tfhd", 0, 0x020018, struct.pack(">III", 1, 960, 10)),
                              _full(b"trun", 0, 0x1, struct.pack(">Ii", 0xFFFFFFFF, 68))))  # fmt: skip
    assert len(moof) == 60  # the samples start after it and the mdat's 8-byte header
    info = _read(_moov() + moof + _box(b"mdat", bytes(10 * 7 + 3)))
    assert (info.samples, info.ticks) == (7, 7 * 960)  # seven whole samples of data are present


def test_malformed_boxes_are_reported() -> None:
    before = _read(_fragment(3, duration=960))
    assert before.duration is None and before.fragmented
    assert any("fragment before the moov" in w for w in before.warnings)
    lying = _moov() + _fragment(3, duration=960)
    at = lying.index(b"trun") + 8
    lying = lying[:at] + struct.pack(">I", 1000) + lying[at + 4 :]  # 1000 samples in a 3-sample table
    assert any("more than it holds" in w for w in _read(lying).warnings)
    assert _read(b"").warnings == ["mp4: no moov with a track: duration unknown"]
    with pytest.raises(mp4.MP4Error, match="less than its header"):
        list(mp4.boxes(struct.pack(">I4s", 4, b"free")))
    with pytest.raises(mp4.MP4Error, match="runs past its parent"):
        list(mp4.boxes(struct.pack(">I4s", 100, b"free")))


def test_large_and_to_the_end_sizes() -> None:
    body = _moov() + _fragment(5, duration=960)
    moof_at = body.index(b"moof") - 4
    moof_box = body[moof_at : body.index(b"mdat") - 4]
    # The moof with a 64-bit size (header 16 bytes: the trun offset grows by 8), the mdat running to the end.
    wide = struct.pack(">I4sQ", 1, b"moof", len(moof_box) + 8) + moof_box[8:]
    at = wide.index(b"trun") + 12
    offset = struct.unpack(">i", wide[at : at + 4])[0]
    wide = wide[:at] + struct.pack(">i", offset + 8) + wide[at + 4 :]
    info = _read(body[:moof_at] + wide + struct.pack(">I4s", 0, b"mdat") + bytes(50))
    assert (info.samples, info.duration, info.warnings) == (5, 0.1, [])


# -- never more than the documented failure, never a hang ------------------------------------------


class _CountingReader(io.BytesIO):
    reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads += 1
        return super().read(size)


def _bounded_read(data: bytes) -> mp4.MovieInfo:
    handle = _CountingReader(data)
    info = mp4.read_movie(handle)
    # One header read per top-level box (each at least 8 bytes) plus one body read for a moov or moof.
    assert handle.reads <= 2 * (len(data) // 8 + 1)
    assert info.duration is None or info.duration >= 0
    return info


@pytest.fixture(scope="module")
def opus_bytes(mp4_dir: Path) -> bytes:
    return (mp4_dir / "opus-frag.mp4").read_bytes()


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, 40_000), min_size=2, max_size=2))
def test_any_prefix_counts_no_more_than_a_longer_one(opus_bytes: bytes, cuts: list[int]) -> None:
    short, long = sorted(cuts)
    first, second = _bounded_read(opus_bytes[:short]), _bounded_read(opus_bytes[:long])
    assert first.samples <= second.samples and first.ticks <= second.ticks


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 255)), min_size=1, max_size=8))
def test_flipped_bytes_never_raise(opus_bytes: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(opus_bytes)
    for at, mask in flips:  # the first 3000 bytes: the moov and the first fragments' headers
        data[at] ^= mask
    _bounded_read(bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_boxes_raise_only_mp4_errors(data: bytes) -> None:
    with contextlib.suppress(mp4.MP4Error):
        list(mp4.boxes(data))
    with contextlib.suppress(mp4.MP4Error):
        mp4.parse_moov(data)
    _bounded_read(data)
    _bounded_read(_moov() + data)


def test_mangled_files_are_analysed_without_errors_from_the_parser(opus_bytes: bytes, tmp_path: Path) -> None:
    rng = random.Random(7)
    for index in range(20):
        data = bytearray(opus_bytes)
        for _ in range(4):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"mangled-{index}.mp4"
        path.write_bytes(bytes(data[: rng.randrange(len(data))]))
        result = analyse_file(path)
        assert not any("MP4Error" in e for e in result.errors)  # the parser reports in warnings; it never raises
