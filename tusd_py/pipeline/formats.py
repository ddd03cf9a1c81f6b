"""Identify an audio container from its first bytes (magic numbers), never from the file name.

Clients name files whatever they like (``memo.wav`` that is really AAC is common from mobile
recorders), so the analysis trusts only the bytes. Everything here is pure: :func:`sniff` takes
the head of the file; :func:`sniff_file` only adds reading it (and skipping a leading ID3 tag,
which may be larger than any fixed head).

Frame-sync formats (MP3, ADTS AAC) have no magic number, just an 11/12-bit sync word that random
data matches often; a header is accepted only if the frame that follows it is also valid (or the
data ends first), which makes a false match on noise unlikely.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import msgspec

from tusd_py.pipeline import ebml

HEAD_SIZE = 64 * 1024
#: WebM puts its Info and Tracks before the first Cluster; this bounds how far we look for them.
MATROSKA_HEAD_SIZE = 1024 * 1024


class AudioFormat(StrEnum):
    WAV = "wav"
    RF64 = "rf64"  # RIFF with 64-bit sizes (EBU Tech 3306), also spelled BW64
    MP3 = "mp3"
    AAC = "aac"  # raw ADTS stream
    MP4 = "mp4"  # ISO base media (M4A, MP4, 3GP): ``ftyp`` box
    OPUS = "opus"  # Ogg Opus
    VORBIS = "vorbis"  # Ogg Vorbis
    OGG_FLAC = "ogg-flac"
    OGG = "ogg"  # Ogg with another or unreadable first packet
    FLAC = "flac"
    WEBM = "webm"
    MATROSKA = "matroska"
    UNKNOWN = "unknown"


class Sniff(msgspec.Struct, kw_only=True):
    format: AudioFormat
    #: The ``ftyp`` major brand, or the Matroska DocType, when the format has one.
    detail: str | None = None
    #: Where the audio stream starts: past a leading ID3v2 tag, else 0.
    start: int = 0


_MPEG_BITRATES = {  # kbit/s by (MPEG-1?, layer), index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mpeg_frame_length(header: bytes) -> int | None:
    """Length of the MPEG audio frame whose 4-byte header this is, or None if it is not one."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 0x3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
    layer = 4 - ((header[1] >> 1) & 0x3)  # bits 01/10/11 mean layer III/II/I; 00 is reserved
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 0x3
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # index 0 is "free format", which we cannot size; treat as not a frame
    mpeg1 = version == 3
    bitrate = _MPEG_BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _MPEG_RATES[version][rate_index]
    padding = (header[2] >> 1) & 0x1
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    samples_factor = 144 if layer == 2 or mpeg1 else 72
    return samples_factor * bitrate // rate + padding


def adts_frame_length(header: bytes) -> int | None:
    """Length of the ADTS frame starting with these (at least 7) bytes, or None."""
    if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0:
        return None  # 12-bit sync plus layer 00 (which MPEG audio never uses)
    if (header[2] >> 2) & 0xF > 12:
        return None  # reserved sampling-frequency index
    length = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
    return length if length >= 7 else None


def _frames_chain(data: bytes, frame_length: int | None, check: int) -> bool:
    """True if a frame header sits at 0 and the next frame (if present in ``data``) is valid too."""
    if frame_length is None:
        return False
    following = data[frame_length : frame_length + check]
    if len(following) < check:
        return True  # the data ends inside the first frame: nothing contradicts it
    return (mpeg_frame_length(following) if check == 4 else adts_frame_length(following)) is not None


def id3_size(head: bytes) -> int:
    """Total size of a leading ID3v2 tag (header, body, footer), or 0 if there is none."""
    if len(head) < 10 or head[:3] != b"ID3" or any(b & 0x80 for b in head[6:10]):
        return 0
    body = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]  # "syncsafe" 7-bit bytes
    footer = 10 if head[5] & 0x10 else 0
    return 10 + body + footer


def _ogg(head: bytes) -> AudioFormat:
    if len(head) < 27:
        return AudioFormat.OGG
    packet_at = 27 + head[26]  # the page header is 27 bytes plus one lacing byte per segment
    packet = head[packet_at : packet_at + 8]
    if packet.startswith(b"OpusHead"):
        return AudioFormat.OPUS
    if packet.startswith(b"\x01vorbis"):
        return AudioFormat.VORBIS
    if packet.startswith(b"\x7fFLAC"):
        return AudioFormat.OGG_FLAC
    return AudioFormat.OGG


def sniff(head: bytes) -> Sniff:
    """Identify the format of a stream that starts with ``head`` (no ID3 handling; see sniff_file)."""
    if len(head) >= 12 and head[8:12] == b"WAVE":
        if head[:4] == b"RIFF":
            return Sniff(format=AudioFormat.WAV)
        if head[:4] in (b"RF64", b"BW64"):
            return Sniff(format=AudioFormat.RF64)
    if head[:4] == b"fLaC":
        return Sniff(format=AudioFormat.FLAC)
    if head[:4] == b"OggS":
        return Sniff(format=_ogg(head))
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return Sniff(format=AudioFormat.MP4, detail=head[8:12].decode("latin-1").strip())
    if head[:4] == ebml.EBML_MAGIC:
        doc_type = ebml.doc_type(head)
        fmt = AudioFormat.WEBM if doc_type == "webm" else AudioFormat.MATROSKA
        return Sniff(format=fmt, detail=doc_type)
    if _frames_chain(head, adts_frame_length(head[:7]), 7):
        return Sniff(format=AudioFormat.AAC)
    if _frames_chain(head, mpeg_frame_length(head[:4]), 4):
        return Sniff(format=AudioFormat.MP3)
    return Sniff(format=AudioFormat.UNKNOWN)


def sniff_file(path: Path) -> Sniff:
    with path.open("rb") as handle:
        head = handle.read(HEAD_SIZE)
        start = id3_size(head)
        if start:
            handle.seek(start)
            head = handle.read(HEAD_SIZE)
    found = sniff(head)
    if start and found.format is AudioFormat.UNKNOWN and head:
        # An ID3 tag with no recognisable frame after it (e.g. the sync was cut): still MP3 in practice.
        found = Sniff(format=AudioFormat.MP3)
    found.start = start
    return found
