"""Read a RIFF/WAVE (or RF64/BW64) header: sample format, rate, channels and the data size.

mutagen reads WAVE too, but it neither reports the format tag (PCM versus ADPCM or MP3 inside a
WAV, which decides whether re-encoding is worth it) nor RF64's 64-bit sizes, and it gives up on
a truncated file. Here the chunks are walked by seeking, so a multi-gigabyte recording costs a few
reads, and a data chunk that claims more bytes than the file holds is measured by what is there.
"""

from __future__ import annotations

import struct
from pathlib import Path

import msgspec

#: WAVE format tags (RFC 2361) whose samples are stored as they are, uncompressed.
PCM_TAGS = {0x0001: "pcm", 0x0003: "pcm_float"}
_EXTENSIBLE = 0xFFFE
_OTHER_TAGS = {0x0002: "adpcm", 0x0006: "alaw", 0x0007: "mulaw", 0x0011: "ima_adpcm", 0x0055: "mp3"}
_MAX_CHUNKS = 1024  # a real header has a handful; bound the walk over a corrupt one


class WavInfo(msgspec.Struct, kw_only=True):
    codec: str | None = None  # "pcm", "pcm_float", "adpcm", ... or "wave_0xNNNN"
    format_tag: int | None = None
    channels: int | None = None
    sample_rate: int | None = None
    bits_per_sample: int | None = None
    byte_rate: int | None = None
    data_bytes: int | None = None  # bytes of audio actually present
    declared_bytes: int | None = None  # what the data chunk claims
    #: Sample frames per channel from the ``fact`` chunk, which compressed WAVE formats must carry.
    fact_frames: int | None = None
    warnings: list[str] = msgspec.field(default_factory=list)
    errors: list[str] = msgspec.field(default_factory=list)

    @property
    def uncompressed(self) -> bool:
        return self.format_tag in PCM_TAGS

    @property
    def duration(self) -> float | None:
        if self.data_bytes is None:
            return None
        if not self.uncompressed and self.fact_frames and self.sample_rate and self.declared_bytes:
            # A compressed format's byte rate is only nominal (block headers, padding); the fact
            # chunk counts frames exactly. Scale it down if the data was cut short.
            return self.fact_frames / self.sample_rate * min(1.0, self.data_bytes / self.declared_bytes)
        if not self.byte_rate:
            return None
        return self.data_bytes / self.byte_rate


def _parse_fmt(body: bytes, info: WavInfo) -> None:
    if len(body) < 16:
        info.errors.append("fmt chunk is too short")
        return
    tag, channels, rate, byte_rate, _align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack_from("<H", body, 24)[0]  # the first two bytes of the SubFormat GUID
    info.format_tag = tag
    info.codec = PCM_TAGS.get(tag) or _OTHER_TAGS.get(tag) or f"wave_0x{tag:04x}"
    info.channels = channels or None
    info.sample_rate = rate or None
    info.bits_per_sample = bits or None
    info.byte_rate = byte_rate or None


def read_wav(path: Path) -> WavInfo:
    info = WavInfo()
    file_size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[8:12] != b"WAVE":
            info.errors.append("not a RIFF/WAVE header")
            return info
        rf64 = header[:4] in (b"RF64", b"BW64")
        ds64_data_size: int | None = None
        pos = 12
        for _ in range(_MAX_CHUNKS):
            handle.seek(pos)
            chunk = handle.read(8)
            if len(chunk) < 8:
                break
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            body_at = pos + 8
            if name == b"ds64":
                body = handle.read(min(size, 64))
                if len(body) >= 16:
                    ds64_data_size = struct.unpack_from("<Q", body, 8)[0]
            elif name == b"fact" and size >= 4:
                info.fact_frames = struct.unpack("<I", handle.read(4))[0] or None
            elif name == b"fmt ":
                _parse_fmt(handle.read(min(size, 64)), info)
            elif name == b"data":
                if rf64 and size == 0xFFFFFFFF and ds64_data_size is not None:
                    size = ds64_data_size  # RF64: the real size lives in ds64
                present = max(0, file_size - body_at)
                if size > present:
                    info.warnings.append(f"truncated: data chunk declares {size} bytes, {present} present")
                info.data_bytes = min(size, present)
                info.declared_bytes = size
                break
            pos = body_at + size + (size & 1)  # chunks are padded to an even length
        else:
            info.errors.append("too many chunks before the data chunk")
    if info.format_tag is None:
        info.errors.append("no fmt chunk")
    if info.data_bytes is None:
        info.errors.append("no data chunk")
    return info
