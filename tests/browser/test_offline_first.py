"""The /demo recorder offline-first (issue 28), in headless Debian chromium with a fake microphone.

Each test runs one scenario of run-offline.mjs against a live tusd-py with --demo and auth on; the
runner fails on any page error and on any request leaving the server's origin (127.0.0.1). The app
shell from the service worker with the server stopped; a browser SIGKILLed while recording; the page
behind nginx under a prefix; the token and its 401; retention and clean-up of the local copies.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.live_server import LiveServer
from conformance.nginx_balancer import REFERENCE_CONF, NginxBalancer, find_nginx
from tests.browser.browser_support import run_offline_scenario
from tests.browser.conftest import SECRET
from tests.browser.test_demo_browser import _api_recording, _assert_stored_as_recorded, _auth
from tests.interop.interop_support import request
from tusd_py.auth import AuthConfig, mint_dev_token

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SLICE_S = 2.0  # tusd_py/demo/src/recorder.js SLICE_MS
CRASH_RECORD_S = 10.0
# The SIGKILL comes half a slice after the 10 s mark: the slice in flight is the one lost, not a lucky whole one.
CRASH_KILL_AFTER_S = CRASH_RECORD_S + SLICE_S / 2


def _origin(server: LiveServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def _server_bytes(server: LiveServer, upload_url: str, token: str) -> bytes:
    got = request("GET", f"{_origin(server)}/files/{upload_url.rstrip('/').rsplit('/', 1)[-1]}", _auth(token))
    assert got.status == 200, got
    return got.body


def _decoded_seconds(audio: bytes) -> float:
    """How much audio ffmpeg decodes from these bytes (its last `time=`), not what a header claims."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None, "ffmpeg is needed (Debian package ffmpeg)"
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostats", "-progress", "pipe:1", "-i", "pipe:0", "-f", "null", "-"],
        input=audio, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    times = [line for line in done.stdout.decode().splitlines() if line.startswith("out_time_us=")]
    assert times, done.stderr.decode()
    return int(times[-1].split("=", 1)[1]) / 1e6


def test_page_opens_and_records_with_the_server_stopped_then_uploads_by_itself(
    node: str, token: str, tmp_path: Path
) -> None:
    server = LiveServer(tmp_path / "data", "--demo", "--jwt-secret", SECRET)
    with server:
        answers = {"stop-server": server.stop, "start-server": lambda: server.start() and None}
        result = run_offline_scenario(node, "offline-shell", _origin(server), token, answers=answers, timeout=120)
        # Installable: the manifest parses, and chromium finds nothing missing (service worker, icon, scope).
        assert result["manifest"]["url"].endswith("/demo/manifest.webmanifest") and not result["manifest"]["errors"]
        assert result["installabilityErrors"] == [], result["installabilityErrors"]
        # With the server stopped the page came from the service worker, and recorded into the queue.
        assert result["reloadFromServiceWorker"] is True
        assert result["tokenKept"] is True  # sessionStorage: a reload keeps it
        queued = result["queued"]
        assert queued["status"] == "recorded" and queued["uploadUrl"] is None and queued["blobSize"] > 0, queued
        assert "no answer from the server" in queued["note"], queued
        # The same port and storage again: it uploads by itself, bytes identical to the local copy.
        completed = result["completed"]
        assert completed["blobSha256"] == queued["blobSha256"]
        recording = _assert_stored_as_recorded(server, completed, token)
        assert 2.0 < recording["analysis"]["duration_seconds"] < 4.5, recording["analysis"]


@pytest.mark.parametrize("container", ["audio/webm", "audio/mp4"])
def test_browser_killed_while_recording_keeps_the_slices_written(
    node: str, demo_server: LiveServer, token: str, container: str
) -> None:
    only = {"only": container} if container != "audio/webm" else {}  # WebM is chromium's own choice
    result = run_offline_scenario(
        node, "crash", _origin(demo_server), token, timeout=150, recordMs=int(CRASH_KILL_AFTER_S * 1000), **only
    )
    recorded_s = result["recordedMs"] / 1000
    assert recorded_s >= CRASH_KILL_AFTER_S
    recovered = result["recovered"]
    # Found on the next start, closed as a recording, queued; the take and its slices are gone.
    assert recovered["status"] == "recorded" and recovered["blobType"].startswith(container), recovered
    assert result["leftoverTakes"] == {"takes": 0, "slices": 0}
    assert recovered["recoveredMs"] >= (CRASH_RECORD_S - SLICE_S) * 1000, recovered
    assert "Recovered after an interruption" in recovered["note"]
    # It plays: chromium decodes at least the recorded time minus one slice, and the player advances.
    playback = result["playback"]
    assert playback["decodedSeconds"] >= CRASH_RECORD_S - SLICE_S, playback
    assert playback["playedSeconds"] > 0.5
    # The token was not kept across the browser's restart: the page asked to sign in, then uploaded.
    assert result["tokenAfterRelaunch"] == "" and result["signInShown"] is True
    completed = result["completed"]
    assert completed["blobSha256"] == recovered["blobSha256"]
    recording = _assert_stored_as_recorded(demo_server, completed, token)
    analysis = recording["analysis"]
    assert analysis["codec"] in ("A_OPUS", "opus", "Opus"), analysis
    # What ffmpeg decodes of the server's copy: the audio kept, measured apart from the page and the analysis.
    decoded_s = _decoded_seconds(_server_bytes(demo_server, completed["uploadUrl"], token))
    print(f"crash test ({container}): {decoded_s:.2f} s of audio kept of {recorded_s:.2f} s recorded; "
          f"server analysis: {analysis['duration_seconds']} s")  # fmt: skip
    assert CRASH_RECORD_S - SLICE_S <= decoded_s <= recorded_s, decoded_s
    assert recorded_s - decoded_s < SLICE_S  # lost: at most the slice in flight
    # WebM: the last block's start (up to a block short). MP4: the fragments' timeline, short only by
    # the last frame's guessed duration (21 ms written for 60 ms); their durations' plain sum would be
    # ~40 ms short per fragment.
    tolerance = 0.1 if container == "audio/mp4" else 0.25
    assert abs(analysis["duration_seconds"] - decoded_s) < tolerance, analysis


@pytest.fixture
def prefixed(tmp_path: Path) -> Iterator[tuple[LiveServer, NginxBalancer]]:
    """The shipped nginx configuration mounted under /uploads/ (with X-Forwarded-Prefix), in front of a
    server that trusts the proxy's headers."""
    if find_nginx() is None:
        pytest.skip("nginx is not installed (scripts/ensure-system-packages.sh installs it)")
    text = REFERENCE_CONF.read_text()
    replacements = {
        "    location / {\n        proxy_pass http://tusd_py;\n": "    location /uploads/ {\n        proxy_pass http://tusd_py/;\n",
        'proxy_set_header X-Forwarded-Prefix "";': "proxy_set_header X-Forwarded-Prefix /uploads;",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{REFERENCE_CONF} changed: {old!r}"
        text = text.replace(old, new)
    server = LiveServer(tmp_path / "data", "--demo", "--jwt-secret", SECRET, "--behind-proxy")
    with server, NginxBalancer([f"127.0.0.1:{server.port}"], tmp_path / "nginx", reference=text) as nginx:
        yield server, nginx


def test_page_behind_a_proxy_prefix_keeps_the_prefix_in_every_url(
    node: str, token: str, prefixed: tuple[LiveServer, NginxBalancer]
) -> None:
    server, nginx = prefixed
    result = run_offline_scenario(node, "prefix", nginx.base, token)
    assert result["landedAt"] == f"{nginx.base}/uploads/demo/"
    assert result["serviceWorkerScope"] == f"{nginx.base}/uploads/demo/"
    # Page, shell, tus and API requests: all under the prefix (nothing the proxy does not forward).
    paths = result["paths"]
    assert [entry for entry in paths if not entry.split(" ", 1)[1].startswith("/uploads/")] == []
    assert any(entry.startswith("PATCH /uploads/files/") for entry in paths), paths
    assert any(entry.startswith("GET /uploads/api/v1/recordings/") for entry in paths), paths
    completed = result["completed"]
    assert completed["uploadUrl"].startswith(f"{nginx.base}/uploads/files/"), completed
    # Checked on the server itself, where the upload's path has no prefix.
    _assert_stored_as_recorded(
        server, {**completed, "uploadUrl": completed["uploadUrl"].replace("/uploads/", "/")}, token
    )


def test_token_lives_in_the_tab_only_and_a_401_asks_to_sign_in_again(
    node: str, demo_server: LiveServer, token: str
) -> None:
    refused = mint_dev_token(AuthConfig(enabled=True, secret=secrets.token_urlsafe(48)), "demo-user")
    expired = mint_dev_token(AuthConfig(enabled=True, secret=SECRET), "demo-user", clock=lambda: time.time() - 7200)
    result = run_offline_scenario(node, "sign-in", _origin(demo_server), token, badToken=refused, expiredToken=expired)
    assert result["inputType"] == "password"
    assert result["noToken"].startswith("Sign in to upload")
    assert result["oldTokenAfterReload"] is None  # an older version's localStorage token is removed
    # Refused: the recording waits (not failed, no backoff loop), and the page says to sign in again.
    assert result["refusedText"].startswith("Sign in again: the server did not accept your token")
    assert result["refused"]["status"] == "recorded" and result["refusedRetryAt"] is None, result["refused"]
    assert "sign in again" in result["refused"]["note"]
    assert result["responses401"] >= 1
    # Expired (its own exp): said so without asking the server.
    assert result["expiredText"].startswith("Sign in again: your token has expired")
    assert result["responses401AfterExpired"] == result["responses401"]
    # A good token: uploaded; the token is in sessionStorage only.
    assert result["signInHidden"] is True
    _assert_stored_as_recorded(demo_server, result["completed"], token)
    assert result["storage"] == {"localKeys": [], "oldLocalKey": None, "session": True}


def test_local_copies_kept_by_retention_and_old_failures_offered_for_clean_up(
    node: str, demo_server: LiveServer, token: str
) -> None:
    result = run_offline_scenario(node, "retention", _origin(demo_server), token)
    # Usage and quota as the browser reports them.
    storage = result["storage"]
    assert int(storage["usage"]) > 0 and int(storage["quota"]) == result["storage"]["browserQuota"], storage
    assert storage["persisted"] == str(storage["browserPersisted"]).lower()
    assert "This page uses" in storage["text"] and ("not persistent" in storage["text"]) != storage["browserPersisted"]
    # Default: kept until the user deletes it, also once completed.
    assert result["retentionDefault"] == "null"
    kept = result["kept"]
    assert kept["status"] == "completed" and kept["local"] == "yes" and kept["blobSha256"], kept
    # 1 day: the copy completed 2 days ago went (the entry stays), the one completed an hour ago stays.
    assert result["retentionAfterReload"] == str(24 * 3600 * 1000)
    forged = result["forged"]
    assert forged["old-completed"]["local"] == "no" and forged["old-completed"]["blobSha256"] is None
    assert forged["new-completed"]["local"] == "yes" and forged["new-completed"]["blobSha256"]
    # Failed ones are never removed by retention: the week-old one is offered, and goes only on the click.
    assert forged["old-failed"]["blobSha256"] and forged["new-failed"]["blobSha256"]
    assert result["offer"]["count"] == "1" and "1 failed recording older than a week" in result["offer"]["text"]
    assert "old-failed" not in result["afterCleanup"] and "new-failed" in result["afterCleanup"]
    # "Until the server has completed it": the local copy goes; the player gets a signed link to the same bytes.
    dropped = result["dropped"]
    assert dropped["local"] == "no" and dropped["blobSha256"] is None and dropped["status"] == "completed"
    assert "/download/" in result["serverCopy"]["src"] and "signature=" in result["serverCopy"]["src"]
    assert result["serverCopy"]["sha256"] == kept["blobSha256"]
    recording: dict[str, Any] = _api_recording(demo_server, kept["uploadUrl"], token)
    assert recording["sha256"] == kept["blobSha256"]
