"""Compression analysis over real audio made by ffmpeg, sox and the stdlib, and over broken copies."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tusd_py.pipeline import ebml
from tusd_py.pipeline.analysis import AnalysisResult, Category, CompressionPolicy, analyse_file, recommend
from tusd_py.pipeline.formats import AudioFormat, id3_size, sniff, sniff_file

F, C = AudioFormat, Category
SMALL = CompressionPolicy(threshold_bytes=1000)  # so 2-second files count as "large"

# name -> (format, category, codec, channels or None when the header cannot say)
EXPECTED: dict[str, tuple[AudioFormat, Category, str, int | None]] = {
    "pcm.wav": (F.WAV, C.UNCOMPRESSED, "pcm", 1),
    "sox.wav": (F.WAV, C.UNCOMPRESSED, "pcm", 1),
    "stdlib.wav": (F.WAV, C.UNCOMPRESSED, "pcm", 1),
    "rf64.wav": (F.RF64, C.UNCOMPRESSED, "pcm", 1),
    "adpcm.wav": (F.WAV, C.LOSSY, "adpcm", 1),
    "id3.mp3": (F.MP3, C.LOSSY, "mp3", 1),
    "bare.mp3": (F.MP3, C.LOSSY, "mp3", 1),
    "adts.aac": (F.AAC, C.LOSSY, "aac", 1),
    # AAC in MP4 keeps a template channel count of 2; mutagen will not trust the AAC config
    # over it (implicit parametric stereo cannot be ruled out without decoding), so skip it.
    "aac.m4a": (F.MP4, C.LOSSY, "mp4a.40.2", None),
    "alac.m4a": (F.MP4, C.LOSSLESS, "alac", 1),
    "voice.opus": (F.OPUS, C.LOSSY, "opus", 1),
    "voice.ogg": (F.VORBIS, C.LOSSY, "vorbis", 1),
    "voice.flac": (F.FLAC, C.LOSSLESS, "flac", 1),
    "voice.webm": (F.WEBM, C.LOSSY, "A_OPUS", 1),
    "pcm.mka": (F.MATROSKA, C.UNCOMPRESSED, "A_PCM/INT/LIT", 1),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_real_files(audio_dir: Path, name: str) -> None:
    fmt, category, codec, channels = EXPECTED[name]
    path = audio_dir / name
    result = analyse_file(path, SMALL)
    assert (result.format, result.category, result.codec) == (fmt, category, codec)
    assert result.errors == []
    assert result.size_bytes == path.stat().st_size
    assert result.duration_seconds == pytest.approx(2.0, abs=0.15)
    assert result.sample_rate == 16000
    if channels is not None:
        assert result.channels == channels
    assert result.bitrate_bps is not None and result.bitrate_bps > 0
    advice = result.recommendation
    if category in (C.UNCOMPRESSED, C.LOSSLESS):
        assert advice.action == "transcode" and advice.target_format == "opus"
        assert advice.estimated_size_bytes == int(result.duration_seconds * 4000 * 1.02) + 1024
        assert advice.bytes_saved == result.size_bytes - advice.estimated_size_bytes > 0
        assert advice.ratio == pytest.approx(advice.estimated_size_bytes / result.size_bytes, abs=1e-4)
    else:
        assert advice.action == "keep" and "lossy" in advice.reason
    # Stored as JSON with the recording, and readable back.
    assert msgspec.json.decode(msgspec.json.encode(result), type=AnalysisResult) == result


def test_format_comes_from_bytes_not_the_name(audio_dir: Path, tmp_path: Path) -> None:
    liar = tmp_path / "memo.wav"
    liar.write_bytes((audio_dir / "adts.aac").read_bytes())
    assert analyse_file(liar).format is F.AAC


@pytest.mark.parametrize("name", ["pcm.wav", "voice.flac", "alac.m4a"])
def test_default_threshold_keeps_small_files(audio_dir: Path, name: str) -> None:
    advice = analyse_file(audio_dir / name).recommendation
    assert advice.action == "keep" and str(50 * 1024 * 1024) in advice.reason


def test_recommendation_rules() -> None:
    policy = CompressionPolicy(threshold_bytes=100, target_bitrate_bps=16_000, overhead_fraction=0, overhead_bytes=0)
    big = recommend(C.UNCOMPRESSED, 1_000_000, 60.0, policy)
    assert big.action == "transcode" and big.estimated_size_bytes == 120_000 and big.bytes_saved == 880_000
    assert big.ratio == 0.12
    assert recommend(C.LOSSY, 10**12, 60.0, policy).action == "keep"  # never, however large
    assert recommend(C.UNKNOWN, 10**12, 60.0, policy).action == "keep"
    assert recommend(C.LOSSLESS, 99, 60.0, policy).action == "keep"
    assert "duration unknown" in recommend(C.LOSSLESS, 10**9, None, policy).reason
    assert "not be smaller" in recommend(C.UNCOMPRESSED, 200, 60.0, policy).reason


# -- broken files ---------------------------------------------------------------------------------


def _break(source: Path, target: Path, how: str) -> None:
    data = source.read_bytes()
    if how == "half":
        data = data[: len(data) // 2]
    elif how == "zero-header":
        data = bytes(64) + data[64:]
    elif how == "random":
        data = random.Random(source.name).randbytes(len(data))
    elif how == "empty":
        data = b""
    target.write_bytes(data)


@pytest.mark.parametrize("how", ["half", "zero-header", "random", "empty"])
@pytest.mark.parametrize("name", list(EXPECTED))
def test_broken_files_never_crash(audio_dir: Path, tmp_path: Path, name: str, how: str) -> None:
    path = tmp_path / name
    _break(audio_dir / name, path, how)
    result = analyse_file(path, SMALL)
    msgspec.json.encode(result)
    if how == "half":
        assert result.format is EXPECTED[name][0]  # the magic survives; what follows may not
    elif how in ("zero-header", "random"):
        assert result.format is F.UNKNOWN and result.errors == ["unrecognised format"]
        assert result.recommendation.action == "keep"
    else:
        assert result.errors == ["empty file"] and result.size_bytes == 0


def test_truncated_wav_is_measured_by_what_is_there(audio_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    _break(audio_dir / "stdlib.wav", path, "half")
    result = analyse_file(path)
    assert result.duration_seconds == pytest.approx(1.0, abs=0.01)
    assert any(w.startswith("truncated") for w in result.warnings)


def test_truncated_mp3_is_flagged(audio_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.mp3"
    _break(audio_dir / "id3.mp3", path, "half")  # its Xing header still counts every frame
    result = analyse_file(path)
    assert result.format is F.MP3 and result.category is C.LOSSY
    assert any("header implies" in w for w in result.warnings)


def test_wav_edge_cases(tmp_path: Path) -> None:
    no_data = tmp_path / "nodata.wav"
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    no_data.write_bytes(b"RIFF" + struct.pack("<I", 28) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt)
    result = analyse_file(no_data)
    assert result.format is F.WAV and result.errors == ["no data chunk"] and result.duration_seconds is None
    assert analyse_file(tmp_path / "missing.wav").errors[0].startswith("cannot read file")


def test_sniffing_by_magic() -> None:
    assert sniff(b"RIFF\0\0\0\0WAVE").format is F.WAV
    assert sniff(b"BW64\0\0\0\0WAVE").format is F.RF64
    assert sniff(b"RIFF\0\0\0\0AVI ").format is F.UNKNOWN
    assert sniff(b"\0\0\0\x18ftypM4A \0\0\0\0").detail == "M4A"
    ogg = b"OggS" + bytes(22) + b"\x01\x13"
    assert sniff(ogg + b"OpusHead").format is F.OPUS
    assert sniff(ogg + b"\x01vorbis").format is F.VORBIS
    assert sniff(ogg + b"\x7fFLAC").format is F.OGG_FLAC
    assert sniff(ogg + b"Speex   ").format is F.OGG
    assert id3_size(b"ID3\x04\x00\x10\x00\x00\x01\x00") == 10 + 128 + 10  # syncsafe size, footer flag
    assert id3_size(b"ID3\x04\x00\x00\x00\x00\x80\x00") == 0  # not syncsafe: not a tag


def test_id3_tag_before_flac(audio_dir: Path, tmp_path: Path) -> None:
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 1, 0]) + bytes(128)
    path = tmp_path / "tagged.flac"
    path.write_bytes(tag + (audio_dir / "voice.flac").read_bytes())
    assert sniff_file(path).format is F.FLAC and sniff_file(path).start == len(tag)


def test_webm_without_duration(audio_dir: Path) -> None:
    data = (audio_dir / "voice.webm").read_bytes()
    info = ebml.parse(data)
    assert (info.doc_type, info.codec_id, info.channels) == ("webm", "A_OPUS", 1)
    at = data.index(b"\x44\x89")  # the Duration element: id, one-byte size, float
    total = 3 + (data[at + 2] & 0x7F)
    # Overwrite it with a Void element of the same length, as in a live-written file.
    live = data[:at] + b"\xec" + bytes([0x80 | (total - 2)]) + bytes(total - 2) + data[at + total :]
    assert len(live) == len(data) and info.duration == pytest.approx(2.0, abs=0.05)
    assert ebml.parse(live).duration is None and ebml.parse(live).codec_id == "A_OPUS"


def _without_duration(data: bytes) -> bytes:
    at = data.index(b"\x44\x89")
    total = 3 + (data[at + 2] & 0x7F)
    return data[:at] + b"\xec" + bytes([0x80 | (total - 2)]) + bytes(total - 2) + data[at + total :]


def test_live_webm_duration_comes_from_the_last_block(audio_dir: Path, tmp_path: Path) -> None:
    live = _without_duration((audio_dir / "voice.webm").read_bytes())
    # The last 20 ms Opus frame of a 2 s file starts about 20 ms before its end (ticks are ms here).
    assert ebml.last_block_ticks(live) == pytest.approx(1990, abs=25)
    cluster = live.rindex(b"\x1f\x43\xb6\x75")
    assert ebml.last_block_ticks(live[cluster:]) == ebml.last_block_ticks(live)  # the tail from the last Cluster
    assert ebml.last_block_ticks(live[cluster + 1 :]) is None
    path = tmp_path / "live.webm"
    path.write_bytes(live)
    result = analyse_file(path, SMALL)
    assert result.duration_seconds == pytest.approx(2.0, abs=0.05)
    assert any("last block" in warning for warning in result.warnings)


def test_no_cluster_no_tail_duration() -> None:
    assert ebml.last_block_ticks(b"") is None
    assert ebml.last_block_ticks(b"\x1f\x43\xb6\x75\x81\xa3") is None  # a Cluster id without a Timestamp


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_sniff_and_ebml_never_raise(data: bytes) -> None:
    sniff(data)
    sniff(b"OggS" + data)
    ebml.parse(ebml.EBML_MAGIC + data)
    ebml.parse(data)
    ebml.last_block_ticks(b"\x1f\x43\xb6\x75" + data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(list(EXPECTED)), junk=st.binary(max_size=256), cut=st.integers(0, 400))
def test_analysis_never_raises_on_mangled_headers(
    audio_dir: Path, tmp_path: Path, prefix: str, junk: bytes, cut: int
) -> None:
    data = (audio_dir / prefix).read_bytes()
    path = tmp_path / f"mangled-{os.getpid()}"
    path.write_bytes(data[:cut] + junk)  # a real header cut anywhere, followed by noise
    msgspec.json.encode(analyse_file(path, SMALL))
