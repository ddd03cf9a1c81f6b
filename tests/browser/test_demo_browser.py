"""The /demo page in a real browser: record, keep, queue, resume, process (issue 19).

Each test runs one scenario of run-demo.mjs in headless Debian chromium with a fake microphone
(a beep), against a live tusd-py with --demo and auth on. The runner fails on any page error and on
any request to a host other than the server; screenshots of each state go to tests/browser/artifacts/.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conformance.live_server import LiveServer
from tests.browser.browser_support import run_scenario
from tests.interop.interop_support import CuttingProxy, request
from tests.recordings.conftest import wav_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MiB = 1024 * 1024


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _server_sha256(upload_url: str, token: str) -> str:
    got = request("GET", upload_url, _auth(token))
    assert got.status == 200, got
    return hashlib.sha256(got.body).hexdigest()


def _api_recording(server: LiveServer, upload_url: str, token: str) -> dict[str, Any]:
    upload_id = upload_url.rstrip("/").rsplit("/", 1)[-1]
    got = request("GET", f"http://127.0.0.1:{server.port}/api/recordings/{upload_id}", _auth(token))
    assert got.status == 200, got
    body: dict[str, Any] = json.loads(got.body)
    return body


def _assert_stored_as_recorded(server: LiveServer, facts: dict[str, Any], token: str) -> dict[str, Any]:
    """The server holds exactly the blob kept in IndexedDB, and processed it to completion."""
    assert facts["status"] == "completed"
    assert facts["uploadUrl"], facts
    # Straight to the server: a page loaded through a proxy has the proxy's host in its URLs.
    upload_url = urlsplit(facts["uploadUrl"])._replace(netloc=f"127.0.0.1:{server.port}").geturl()
    assert _server_sha256(upload_url, token) == facts["blobSha256"]
    recording = _api_recording(server, upload_url, token)
    assert recording["status"] == "completed"
    assert recording["length"] == facts["blobSize"]
    return recording


def _assert_opus(recording: dict[str, Any]) -> None:
    analysis = recording["analysis"]
    assert analysis["format"] in ("webm", "opus"), analysis
    assert analysis["codec"] in ("A_OPUS", "opus"), analysis
    assert analysis["category"] == "lossy"
    assert analysis["sample_rate"] == 48000
    assert analysis["recommendation"]["action"] == "keep"
    # MediaRecorder writes no Duration: the server reads it from the last block (2.5 s recorded).
    assert 1.5 < analysis["duration_seconds"] < 3.5, analysis


def test_record_reaches_completed_with_opus_analysis(node: str, demo_server: LiveServer, token: str) -> None:
    result = run_scenario(node, "record", f"http://127.0.0.1:{demo_server.port}", token)
    facts = result["completed"]
    assert facts["blobType"].startswith(("audio/webm", "audio/ogg")), facts
    recording = _assert_stored_as_recorded(demo_server, facts, token)
    _assert_opus(recording)
    # The page shows the server's analysis, and keeps the recording (status and all) across a reload.
    assert "Compression advice" in facts["analysisText"] and "48000 Hz" in facts["analysisText"]
    assert result["afterReload"]["status"] == "completed"
    assert result["afterReload"]["blobSha256"] == facts["blobSha256"]


def test_unreachable_server_keeps_recording_through_reload_then_uploads(
    node: str, demo_server: LiveServer, token: str
) -> None:
    result = run_scenario(node, "unreachable-reload", f"http://127.0.0.1:{demo_server.port}", token)
    for state in (result["queued"], result["afterReload"]):
        assert state["status"] == "recorded" and state["uploadUrl"] is None, state
        assert state["count"] == 1
    assert result["afterReload"]["blobSha256"] == result["queued"]["blobSha256"]
    assert result["blocked"] >= 1  # it did try, and was refused
    _assert_stored_as_recorded(demo_server, result["completed"], token)
    assert result["completed"]["blobSha256"] == result["queued"]["blobSha256"]


def test_offline_then_online_uploads_at_once(node: str, demo_server: LiveServer, token: str) -> None:
    result = run_scenario(node, "offline-online", f"http://127.0.0.1:{demo_server.port}", token)
    assert result["offline"]["status"] == "recorded" and result["offline"]["uploadUrl"] is None
    # Uploaded on the `online` event, well before the next try the backoff had planned.
    assert result["msToUploaded"] < result["retryInMs"], result
    _assert_stored_as_recorded(demo_server, result["completed"], token)


def test_cut_upload_resumes_from_server_offset_after_reload(
    node: str, demo_server: LiveServer, token: str, tmp_path: Path
) -> None:
    audio = tmp_path / "tone.wav"
    audio.write_bytes(wav_bytes(seconds=32.0, rate=48_000))  # ~3 MiB
    size = audio.stat().st_size
    cut_at = 1 * MiB
    with CuttingProxy(demo_server.url, method="PATCH", body_bytes=cut_at) as proxy:
        result = run_scenario(node, "resume", f"http://127.0.0.1:{proxy.port}", token, file=str(audio))
    assert [record.body_bytes_forwarded for record in proxy.cut_records] == [cut_at]
    assert result["interrupted"]["status"] == "uploading" and result["afterReload"]["status"] == "uploading"

    exchanges = result["exchanges"]
    patches = [x for x in exchanges if x["method"] == "PATCH" and x["status"] == 204]
    assert len(patches) == 1, exchanges  # the cut PATCH got no response; one more carried the rest
    resumed = patches[0]
    # The reloaded page asked the server (HEAD) and went on from its offset, not from zero.
    heads = [x for x in exchanges if x["method"] == "HEAD" and x["status"] == 200]
    assert heads and heads[-1]["responseOffset"] == str(cut_at), exchanges
    assert resumed["requestOffset"] == str(cut_at) and resumed["responseOffset"] == str(size)
    # Bytes the server took in: what it kept of the cut PATCH, plus what the resumed PATCH appended.
    kept = [json.loads(line)["kept"] for line in demo_server.logs().splitlines() if '"body ended early"' in line]
    assert kept == [cut_at]
    assert kept[0] + (int(resumed["responseOffset"]) - int(resumed["requestOffset"])) == size

    facts = result["completed"]
    assert facts["blobSha256"] == hashlib.sha256(audio.read_bytes()).hexdigest()
    recording = _assert_stored_as_recorded(demo_server, facts, token)
    assert recording["analysis"]["format"] == "wav"
