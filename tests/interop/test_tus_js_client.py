"""tus-js-client 4.x (Node) against the server: one Node subprocess per scenario.

Needs the fixtures `tus_url` (the creation endpoint, e.g. http://127.0.0.1:PORT/files/) and
`auth_headers` (a dict, empty when the server runs without auth) from tests/conftest.py. The server
must run outside the test's thread (subprocess or its own thread): these tests block on Node.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from interop_support import (
    CuttingProxy,
    assert_upload_complete,
    decode_metadata,
    head_upload,
    make_payload,
    sha256_file,
)

from tests.node_runner import run_node_scenario
from tests.real_parts import part_missing

pytestmark = pytest.mark.interop

JS_DIR = Path(__file__).parent / "js"
RUNNER = JS_DIR / "run-scenario.mjs"
MiB = 1024 * 1024
SCENARIO_TIMEOUT_S = 90
UNICODE_FILENAME = "voix-\u00e9t\u00e9-\u4f1a\u8b70-\U0001f3a4.m4a"


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with tus-js-client installed from the lock file (npm ci) when missing."""
    node_bin = shutil.which("node")
    if node_bin is None:
        part_missing("node is not installed")
    if not (JS_DIR / "node_modules" / "tus-js-client").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            part_missing("npm is not installed")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return node_bin


def run_scenario(
    node: str,
    scenario: str,
    endpoint: str,
    payload: Path,
    headers: dict[str, str],
    **options: Any,
) -> dict[str, Any]:
    """Runs one runner scenario; returns its JSON result (asserting nothing about it)."""
    args = {"scenario": scenario, "endpoint": endpoint, "file": str(payload), "headers": headers, **options}
    return run_node_scenario(node, RUNNER, args, cwd=JS_DIR, timeout=SCENARIO_TIMEOUT_S)


def assert_ok(result: dict[str, Any]) -> None:
    assert result["ok"], f"scenario failed: {result['errors']}\nrequests: {result['requests']}\n{result['_stderr']}"
    assert result["errors"] == []
    # Every request of every tus client carries the protocol version.
    assert all(r["headers"].get("Tus-Resumable") == "1.0.0" for r in result["requests"])
    # No request may have ended in a server error, whatever the client did.
    assert not [r for r in result["requests"] if r["status"] is not None and r["status"] >= 500], result["requests"]


def methods(result: dict[str, Any]) -> list[str]:
    return [r["method"] for r in result["requests"]]


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    # Not a multiple of 1 MiB, so the last chunk is short.
    return make_payload(tmp_path, 3 * MiB + 12_345, seed=7)


def test_single_request(node: str, tus_url: str, auth_headers: dict[str, str], payload: Path) -> None:
    result = run_scenario(node, "single", tus_url, payload, auth_headers)
    assert_ok(result)
    assert methods(result) == ["POST", "PATCH"]
    post, patch = result["requests"]
    assert post["status"] == 201
    assert post["headers"]["Upload-Length"] == str(payload.stat().st_size)
    assert "Content-Type" not in post["headers"]
    assert patch["headers"]["Upload-Offset"] == "0"
    assert patch["headers"]["Content-Type"] == "application/offset+octet-stream"
    assert patch["status"] == 204
    assert patch["response"]["Upload-Offset"] == str(payload.stat().st_size)
    assert result["progress"]["monotonic"] and result["progress"]["last"] == payload.stat().st_size
    assert result["uploadUrl"].startswith(("http://", "https://"))
    assert_upload_complete(result["uploadUrl"], payload, auth_headers)


def test_one_mib_chunks(node: str, tus_url: str, auth_headers: dict[str, str], payload: Path) -> None:
    size = payload.stat().st_size
    result = run_scenario(node, "chunked", tus_url, payload, auth_headers, chunkSize=MiB)
    assert_ok(result)
    patches = [r for r in result["requests"] if r["method"] == "PATCH"]
    assert len(patches) == math.ceil(size / MiB)
    # Each PATCH starts where the server said the previous one ended.
    expected_offset = 0
    for patch in patches:
        assert patch["headers"]["Upload-Offset"] == str(expected_offset)
        expected_offset = min(expected_offset + MiB, size)
        assert patch["response"]["Upload-Offset"] == str(expected_offset)
    assert result["accepted"] == [min((i + 1) * MiB, size) for i in range(len(patches))]
    assert result["progress"]["monotonic"]
    assert_upload_complete(result["uploadUrl"], payload, auth_headers)


def test_progress_events_monotonic(node: str, tus_url: str, auth_headers: dict[str, str], tmp_path: Path) -> None:
    big = make_payload(tmp_path, 8 * MiB + 1, seed=11, name="big.bin")
    result = run_scenario(node, "chunked", tus_url, big, auth_headers, chunkSize=256 * 1024)
    assert_ok(result)
    assert result["progress"]["monotonic"], "onProgress went backwards without any fault"
    assert result["progress"]["last"] == big.stat().st_size
    assert result["progress"]["count"] >= math.ceil(big.stat().st_size / (256 * 1024))
    assert result["acceptedIncreasing"]
    assert_upload_complete(result["uploadUrl"], big, auth_headers)


def test_abort_and_resume_from_url_storage(
    node: str, tus_url: str, auth_headers: dict[str, str], payload: Path, tmp_path: Path
) -> None:
    storage = tmp_path / "tus-urls.json"
    result = run_scenario(node, "resume", tus_url, payload, auth_headers, storage=str(storage), chunkSize=256 * 1024)
    assert_ok(result)
    assert result["previousUploads"] == 1 and result["sameUrl"]
    # The new Upload asks the server first, then continues exactly at the offset it was given.
    resumed = result["requests"][-len(result["resumedRequests"]) :]
    head = resumed[0]
    assert head["method"] == "HEAD" and head["status"] == 200
    assert int(head["response"]["Upload-Offset"]) >= payload.stat().st_size // 2
    assert resumed[1]["method"] == "PATCH"
    assert resumed[1]["headers"]["Upload-Offset"] == head["response"]["Upload-Offset"]
    assert "POST" not in result["resumedRequests"]
    assert result["acceptedIncreasing"]
    assert result["progress"]["monotonic"]
    assert json.loads(storage.read_text()), "the URL storage file should hold the upload"
    assert_upload_complete(result["uploadUrl"], payload, auth_headers)


def test_abort_mid_request_then_resume(node: str, tus_url: str, auth_headers: dict[str, str], tmp_path: Path) -> None:
    payload = make_payload(tmp_path, 4 * MiB + 3, seed=5)
    result = run_scenario(node, "abort-mid-request", tus_url, payload, auth_headers, storage=str(tmp_path / "u.json"))
    assert_ok(result)
    assert result["sameUrl"]
    aborted = [r for r in result["requests"] if r.get("aborted")]
    assert len(aborted) == 1 and aborted[0]["method"] == "PATCH"
    assert result["resumedRequests"][0] == "HEAD"
    # The server keeps the bytes that arrived before the client dropped the request.
    first_resumed_patch = next(
        r for r in result["requests"] if r["method"] == "PATCH" and not r.get("aborted") and r["status"] == 204
    )
    assert int(first_resumed_patch["headers"]["Upload-Offset"]) > 0
    assert result["acceptedIncreasing"]
    assert_upload_complete(result["uploadUrl"], payload, auth_headers)


def test_connection_cut_mid_patch_is_retried_from_server_offset(
    node: str, tus_url: str, auth_headers: dict[str, str], payload: Path, tus_backend: str, tus_topology: str
) -> None:
    cut_at = 700_001
    with CuttingProxy(tus_url, method="PATCH", body_bytes=cut_at) as proxy:
        result = run_scenario(node, "network-cut", proxy.url_for(tus_url), payload, auth_headers)
        # Checked through the proxy (it only cuts once): the upload URL names the proxy's address.
        assert_ok(result)
        assert_upload_complete(result["uploadUrl"], payload, auth_headers)
    assert len(proxy.cut_records) == 1, "the PATCH did not go through the proxy: Location must follow the Host header"
    seq = methods(result)
    assert seq[:2] == ["POST", "PATCH"] and result["requests"][1]["status"] is None
    assert "HEAD" in seq[2:], seq
    # The first PATCH the server accepted after the cut starts at the bytes that reached it: exactly
    # on the filesystem; on S3, at most that (only what is durably in S3 is ever reported). Through
    # nginx, at most that too: bytes nginx had read but not yet passed on when the client went
    # away never reach tusd-py.
    accepted_after_cut = next(r for r in result["requests"][2:] if r["method"] == "PATCH" and r["status"] == 204)
    resumed_at = int(accepted_after_cut["headers"]["Upload-Offset"])
    if tus_backend == "filesystem" and tus_topology == "one instance":
        assert resumed_at == cut_at
    else:
        assert 0 <= resumed_at <= cut_at
    assert result["acceptedIncreasing"]


def test_deferred_length_from_stream(node: str, tus_url: str, auth_headers: dict[str, str], payload: Path) -> None:
    size = payload.stat().st_size
    result = run_scenario(node, "deferred", tus_url, payload, auth_headers, chunkSize=MiB)
    assert_ok(result)
    post = result["requests"][0]
    assert post["method"] == "POST" and post["headers"].get("Upload-Defer-Length") == "1"
    assert "Upload-Length" not in post["headers"]
    patches = [r for r in result["requests"] if r["method"] == "PATCH"]
    assert [p["headers"].get("Upload-Length") for p in patches] == [None] * (len(patches) - 1) + [str(size)]
    assert result["progress"]["monotonic"]
    assert_upload_complete(result["uploadUrl"], payload, auth_headers)


def test_parallel_uploads_concatenation(node: str, tus_url: str, auth_headers: dict[str, str], payload: Path) -> None:
    result = run_scenario(node, "parallel", tus_url, payload, auth_headers)
    assert_ok(result)
    assert result["partialCount"] == 3
    [final] = result["finalConcat"]
    partial_urls = final.removeprefix("final;").split(" ")
    assert len(partial_urls) == 3
    final_post = result["requests"][-1]
    assert final_post["method"] == "POST" and final_post["status"] == 201
    assert result["progress"]["monotonic"]
    assert_upload_complete(result["uploadUrl"], payload, auth_headers)


def test_unicode_metadata(node: str, tus_url: str, auth_headers: dict[str, str], payload: Path) -> None:
    result = run_scenario(node, "unicode-metadata", tus_url, payload, auth_headers)
    assert_ok(result)
    head = assert_upload_complete(result["uploadUrl"], payload, auth_headers)
    stored = decode_metadata(head.headers.get("upload-metadata"))
    assert stored == result["metadata"]
    assert stored["filename"] == UNICODE_FILENAME


def test_no_metadata(node: str, tus_url: str, auth_headers: dict[str, str], payload: Path) -> None:
    result = run_scenario(node, "no-metadata", tus_url, payload, auth_headers)
    assert_ok(result)
    assert "Upload-Metadata" not in result["requests"][0]["headers"]
    head = assert_upload_complete(result["uploadUrl"], payload, auth_headers)
    assert decode_metadata(head.headers.get("upload-metadata")) == {}


def test_terminate_during_upload(node: str, tus_url: str, auth_headers: dict[str, str], payload: Path) -> None:
    result = run_scenario(node, "terminate", tus_url, payload, auth_headers, chunkSize=256 * 1024)
    assert_ok(result)
    delete = result["requests"][-1]
    assert delete["method"] == "DELETE" and delete["status"] == 204
    assert result["headAfter"]["status"] in (404, 410)
    assert head_upload(result["terminatedUrl"], auth_headers).status in (404, 410)


def test_terminate_finished_upload(node: str, tus_url: str, auth_headers: dict[str, str], payload: Path) -> None:
    result = run_scenario(node, "terminate-url", tus_url, payload, auth_headers)
    assert_ok(result)
    assert result["headBefore"]["uploadOffset"] == str(payload.stat().st_size)
    assert methods(result)[-1] == "DELETE" and result["requests"][-1]["status"] == 204
    assert result["headAfter"]["status"] in (404, 410)


def test_authorization_header_on_every_request(
    node: str, tus_url: str, auth_headers: dict[str, str], payload: Path
) -> None:
    if not auth_headers:
        pytest.skip("the server under test runs without auth")
    result = run_scenario(node, "auth", tus_url, payload, auth_headers, chunkSize=MiB)
    assert_ok(result)
    assert result["authOnEveryRequest"] is True
    assert_upload_complete(result["uploadUrl"], payload, auth_headers)

    anonymous = run_scenario(node, "single", tus_url, payload, {})
    assert not anonymous["ok"]
    assert anonymous["requests"][0]["status"] in (401, 403)
    assert anonymous["errors"][0].get("status") in (401, 403)


def test_runner_reports_the_file_it_uploaded(
    node: str, tus_url: str, auth_headers: dict[str, str], payload: Path
) -> None:
    """Guards the harness itself: the sha256 the runner reports is the payload's."""
    result = run_scenario(node, "single", tus_url, payload, auth_headers)
    assert_ok(result)
    assert result["sha256"] == sha256_file(payload)
    assert result["size"] == payload.stat().st_size
