"""Fixtures for the pipeline tests: a controllable clock, an open store (SQLite, PostgreSQL), real audio files."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.real_parts import part_missing
from tusd_py.database.connection import Database
from tusd_py.pipeline.postgres_store import PostgresRecordingStore
from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore
from tusd_py.pipeline.store import RecordingStore

SECONDS = 2
RATE = 16000  # voice-like: 16 kHz mono


class FakeClock:
    """Time that moves only when a test says so, for backoff and age rules."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sqlite_store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteRecordingStore]:
    sqlite = SQLiteRecordingStore(tmp_path / "pipeline.sqlite3", clock=clock)
    await sqlite.open()
    yield sqlite
    await sqlite.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_store(request: pytest.FixtureRequest) -> dict[str, Any]:
    """PipelineConfig overrides for each store in turn: SQLite, then PostgreSQL with a short lease
    (a job cut at shutdown is taken again once its lease runs out, not after a minute)."""
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("database_url"), "lease_seconds": 1.0}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[RecordingStore]:
    """Each store in turn, so both give the interface's guarantees with the same assertions."""
    opened: RecordingStore
    if request.param == "sqlite":
        opened = SQLiteRecordingStore(tmp_path / "pipeline.sqlite3", clock=clock)
    else:
        opened = PostgresRecordingStore(Database(request.getfixturevalue("database_url")), clock=clock)
    await opened.open()
    yield opened
    await opened.close()


# -- real audio, made once per session ------------------------------------------------------------

_SINE = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={RATE}:duration={SECONDS}", "-ac", "1"]

#: name -> ffmpeg output options. Each is a format a phone or browser recorder really produces.
FFMPEG_FILES: dict[str, list[str]] = {
    "pcm.wav": ["-c:a", "pcm_s16le"],
    "rf64.wav": ["-c:a", "pcm_s16le", "-rf64", "always", "-f", "wav"],
    "adpcm.wav": ["-c:a", "adpcm_ms"],
    "id3.mp3": ["-c:a", "libmp3lame", "-b:a", "32k"],
    "bare.mp3": ["-c:a", "libmp3lame", "-b:a", "32k", "-id3v2_version", "0", "-write_xing", "0"],
    "adts.aac": ["-c:a", "aac", "-b:a", "32k", "-f", "adts"],
    "aac.m4a": ["-c:a", "aac", "-b:a", "32k"],
    "alac.m4a": ["-c:a", "alac"],
    "voice.opus": ["-c:a", "libopus", "-b:a", "24k"],
    "voice.ogg": ["-c:a", "libvorbis", "-q:a", "0"],
    "voice.flac": ["-c:a", "flac"],
    "voice.webm": ["-c:a", "libopus", "-b:a", "24k"],
    "pcm.mka": ["-c:a", "pcm_s16le"],
}


def write_wave(path: Path, seconds: float = SECONDS, rate: int = RATE) -> None:
    """A 16-bit mono sine written by hand with the stdlib, independent of ffmpeg and sox."""
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ffmpeg, sox = shutil.which("ffmpeg"), shutil.which("sox")
    if ffmpeg is None or sox is None:
        part_missing("ffmpeg and sox are needed to generate test audio (apt-get install ffmpeg sox)")
    directory = tmp_path_factory.mktemp("audio")
    for name, options in FFMPEG_FILES.items():
        subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", "-y", *_SINE, *options, str(directory / name)],
            check=True,
            timeout=60,
        )
    subprocess.run(
        [sox, "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(directory / "sox.wav"), "synth", str(SECONDS),
         "sine", "440"],
        check=True,
        timeout=60,
    )  # fmt: skip
    write_wave(directory / "stdlib.wav")
    return directory
