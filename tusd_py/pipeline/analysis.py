"""Compression analysis of a stored recording: what it is, and whether re-encoding would pay.

Pure and synchronous over a local file path (the worker runs it in a thread). It reads headers
only (for a fragmented MP4, each fragment's: see ``mp4.py``), never decodes audio, and never
raises: a corrupt or truncated file is described as far as its bytes allow, with what could not
be read listed in ``errors`` and doubts in ``warnings``.

The advice follows one rule: only audio stored without lossy compression (PCM WAV, FLAC, ALAC)
larger than ``threshold_bytes`` is worth transcoding to Opus at a voice bitrate. Lossy audio
(MP3, AAC, Opus, Vorbis, WebM) is never re-encoded: a second lossy generation loses quality for
little gain, since its bitrate is already close to what a voice encoder would use.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import msgspec
import structlog
from mutagen.aac import AAC
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from tusd_py.pipeline import ebml, mp4
from tusd_py.pipeline.formats import MATROSKA_HEAD_SIZE, AudioFormat, sniff_file
from tusd_py.pipeline.wav import read_wav

log = structlog.get_logger(__name__)


class Category(StrEnum):
    UNCOMPRESSED = "uncompressed"
    LOSSLESS = "lossless"
    LOSSY = "lossy"
    UNKNOWN = "unknown"


class CompressionPolicy(msgspec.Struct, kw_only=True, frozen=True):
    threshold_bytes: int = 50 * 1024 * 1024  # smaller files upload quickly enough as they are
    target_format: str = "opus"
    target_bitrate_bps: int = 32_000  # Opus is transparent for mono speech around 24-32 kbit/s
    # Ogg pages cost ~27 bytes plus lacing per page; with ~1 page per second this is ~2 % at
    # 32 kbit/s, plus the OpusHead/OpusTags header pages.
    overhead_fraction: float = 0.02
    overhead_bytes: int = 1024


class Recommendation(msgspec.Struct, kw_only=True):
    action: Literal["transcode", "keep"]
    reason: str
    target_format: str | None = None
    target_bitrate_bps: int | None = None
    estimated_size_bytes: int | None = None
    ratio: float | None = None  # estimated size / current size
    bytes_saved: int | None = None  # saved on storage and on every transfer of the file


class AnalysisResult(msgspec.Struct, kw_only=True):
    format: AudioFormat
    detail: str | None = None  # MP4 major brand or Matroska DocType
    codec: str | None = None
    category: Category = Category.UNKNOWN
    size_bytes: int = 0
    duration_seconds: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bits_per_sample: int | None = None
    bitrate_bps: int | None = None
    recommendation: Recommendation
    warnings: list[str] = msgspec.field(default_factory=list)
    errors: list[str] = msgspec.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = msgspec.to_builtins(self)
        return value


def recommend(category: Category, size: int, duration: float | None, policy: CompressionPolicy) -> Recommendation:
    """The transcoding advice for a file of this kind, size and duration."""
    if category is Category.LOSSY:
        return Recommendation(action="keep", reason="already lossy: re-encoding would lose quality")
    if category is Category.UNKNOWN:
        return Recommendation(action="keep", reason="codec unknown: cannot judge")
    if size < policy.threshold_bytes:
        return Recommendation(action="keep", reason=f"smaller than {policy.threshold_bytes} bytes")
    if duration is None or duration <= 0:
        return Recommendation(action="keep", reason="duration unknown: cannot estimate the encoded size")
    payload = duration * policy.target_bitrate_bps / 8
    estimate = int(payload * (1 + policy.overhead_fraction)) + policy.overhead_bytes
    if estimate >= size:
        return Recommendation(action="keep", reason=f"{policy.target_format} would not be smaller")
    return Recommendation(
        action="transcode",
        reason=f"{category.value} audio above {policy.threshold_bytes} bytes",
        target_format=policy.target_format,
        target_bitrate_bps=policy.target_bitrate_bps,
        estimated_size_bytes=estimate,
        ratio=round(estimate / size, 4),
        bytes_saved=size - estimate,
    )


# -- per-format probes: each fills in what it can and leaves the rest None --------------------------


def _probe_wav(path: Path, result: AnalysisResult) -> None:
    wav = read_wav(path)
    result.codec = wav.codec
    if wav.format_tag is not None:
        result.category = Category.UNCOMPRESSED if wav.uncompressed else Category.LOSSY
    result.channels, result.sample_rate = wav.channels, wav.sample_rate
    result.bits_per_sample = wav.bits_per_sample
    result.bitrate_bps = wav.byte_rate * 8 if wav.byte_rate else None
    result.duration_seconds = wav.duration
    result.warnings += wav.warnings
    result.errors += wav.errors


def _mutagen_probe(loader: Callable[[Path], Any], codec: str, category: Category) -> Callable[..., None]:
    def probe(path: Path, result: AnalysisResult) -> None:
        # Codec and category come from the format itself, so they stand even if the header fails.
        result.category = category
        result.codec = codec or None
        info = loader(path).info
        if not codec:
            result.codec = str(getattr(info, "codec", "") or "") or None
        result.duration_seconds = getattr(info, "length", None) or None
        result.sample_rate = getattr(info, "sample_rate", None) or None
        result.channels = getattr(info, "channels", None) or None
        result.bits_per_sample = getattr(info, "bits_per_sample", None) or None
        result.bitrate_bps = getattr(info, "bitrate", None) or None

    return probe


def _probe_mp4(path: Path, result: AnalysisResult) -> None:
    with path.open("rb") as handle:
        movie = mp4.read_movie(handle)
    result.warnings += movie.warnings
    try:
        _mutagen_probe(_load_mp4, "", Category.UNKNOWN)(path, result)
    finally:
        # A fragmented file's moov was written before its audio (browser recorders): mutagen's
        # length is the header's 0 s, the fragments' samples are the real one.
        if movie.fragmented:
            result.duration_seconds = movie.duration
    codec = result.codec  # as mutagen reported it
    if codec is None:
        return
    if codec == "alac":
        result.category = Category.LOSSLESS
    elif codec in ("lpcm", "sowt", "twos", "ipcm"):
        result.category = Category.UNCOMPRESSED
    else:
        result.category = Category.LOSSY  # mp4a.40.x (AAC), ac-3, opus, mp4a.6b (MP3)...


def _probe_opus(path: Path, result: AnalysisResult) -> None:
    _mutagen_probe(OggOpus, "opus", Category.LOSSY)(path, result)
    # Opus always decodes at 48 kHz; OpusHead keeps the rate the recorder captured at, the one
    # that says something about the source.
    with path.open("rb") as handle:
        head = handle.read(512)
    packet = head[27 + head[26] :] if len(head) > 27 else b""
    if packet.startswith(b"OpusHead") and len(packet) >= 16:
        result.sample_rate = int.from_bytes(packet[12:16], "little") or 48000


def _probe_matroska(path: Path, result: AnalysisResult) -> None:
    with path.open("rb") as handle:
        mkv = ebml.parse(handle.read(MATROSKA_HEAD_SIZE))
    result.warnings += mkv.warnings
    codec = mkv.codec_id
    result.codec = codec
    result.duration_seconds, result.sample_rate, result.channels = mkv.duration, mkv.sample_rate, mkv.channels
    if codec is None:
        # WebM admits only Opus and Vorbis audio, so it is lossy whatever the track says.
        result.category = Category.LOSSY if result.format is AudioFormat.WEBM else Category.UNKNOWN
        result.warnings.append("no audio track found in the header")
    elif codec.startswith("A_PCM"):
        result.category = Category.UNCOMPRESSED
    elif codec in ("A_FLAC", "A_ALAC", "A_WAVPACK4", "A_TTA1"):
        result.category = Category.LOSSLESS
    else:
        result.category = Category.LOSSY
    if mkv.duration is None:
        _duration_from_tail(path, mkv, result)


def _duration_from_tail(path: Path, mkv: ebml.MatroskaInfo, result: AnalysisResult) -> None:
    """Live-written files (browser MediaRecorder) have no Duration: the last block's time stands in."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - ebml.TAIL_SIZE))
        ticks = ebml.last_block_ticks(handle.read())
    if ticks is None:
        result.warnings.append("duration not in the header (live-written file) and no cluster found at the end")
        return
    result.duration_seconds = round(ticks * mkv.timestamp_scale / 1e9, 3)
    result.warnings.append("duration not in the header (live-written file): taken from the last block's timestamp")


_load_mp4: Callable[[Path], Any] = MP4  # mutagen's MP4 is untyped

_PROBES: dict[AudioFormat, Callable[[Path, AnalysisResult], None]] = {
    AudioFormat.WAV: _probe_wav,
    AudioFormat.RF64: _probe_wav,
    AudioFormat.MP3: _mutagen_probe(MP3, "mp3", Category.LOSSY),
    AudioFormat.AAC: _mutagen_probe(AAC, "aac", Category.LOSSY),
    AudioFormat.MP4: _probe_mp4,
    AudioFormat.OPUS: _probe_opus,
    AudioFormat.VORBIS: _mutagen_probe(OggVorbis, "vorbis", Category.LOSSY),
    AudioFormat.OGG_FLAC: _mutagen_probe(OggFLAC, "flac", Category.LOSSLESS),
    AudioFormat.FLAC: _mutagen_probe(FLAC, "flac", Category.LOSSLESS),
    AudioFormat.WEBM: _probe_matroska,
    AudioFormat.MATROSKA: _probe_matroska,
}


def analyse_file(path: Path, policy: CompressionPolicy | None = None) -> AnalysisResult:
    """Describe the audio file at ``path`` and advise on transcoding it. Never raises."""
    policy = policy or CompressionPolicy()
    result = AnalysisResult(format=AudioFormat.UNKNOWN, recommendation=Recommendation(action="keep", reason=""))
    try:
        result.size_bytes = path.stat().st_size
        sniffed = sniff_file(path)
        result.format, result.detail = sniffed.format, sniffed.detail
    except OSError as exc:
        result.errors.append(f"cannot read file: {exc}")
    probe = _PROBES.get(result.format)
    if result.size_bytes == 0 and not result.errors:
        result.errors.append("empty file")
    elif probe is None:
        if not result.errors:
            result.errors.append("unrecognised format")
    else:
        try:
            probe(path, result)
        except Exception as exc:  # mutagen raises many types on bad input; none may stop the worker
            result.errors.append(f"{result.format.value} header unreadable: {type(exc).__name__}: {exc}")
    _check_consistency(result)
    result.recommendation = recommend(result.category, result.size_bytes, result.duration_seconds, policy)
    return result


def _check_consistency(result: AnalysisResult) -> None:
    duration = result.duration_seconds
    if duration is not None and duration <= 0:
        result.duration_seconds = duration = None
    if result.bitrate_bps is None and duration and result.size_bytes:
        result.bitrate_bps = int(result.size_bytes * 8 / duration)
        result.warnings.append("bitrate estimated from file size and duration")
    if result.bitrate_bps is not None:
        result.bitrate_bps = int(result.bitrate_bps)
    if result.bitrate_bps and duration and result.category is Category.LOSSY:
        # Far fewer bytes than the header's duration needs at the header's bitrate: the file was
        # cut short. (Only lossy headers state a real bitrate; ALAC's is the uncompressed rate.)
        expected = result.bitrate_bps * duration / 8
        if result.size_bytes < 0.6 * expected:
            result.warnings.append(f"file holds {result.size_bytes} bytes, header implies about {int(expected)}")
