"""The container image (Containerfile): built over a Debian base, run with a published port, stopped by SIGTERM.

Through 127.0.0.1:PORT it serves the /demo page, an upload made with curl and one made with
tus-js-client, with settings given only as TUSD_PY_* variables; `podman stop` then drains a download
in flight and the server exits 0. Builds an image (the base is cached, see container_support.py):
slow, and marked ``container``. Needs root, podman, runc and debootstrap (make test installs them).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.client import Client
from conformance.live_server import free_port
from tests.client.wait import wait_until
from tests.node_runner import node_with_package, run_node_scenario
from tests.packaging.container_support import (
    PODMAN,
    base_image,
    build_image,
    logs,
    missing_tools,
    podman,
    run_container,
    wait_for_log,
)
from tests.packaging.http_checks import fetch_demo, healthy

pytestmark = [pytest.mark.slow, pytest.mark.container, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "tests" / "interop" / "js"
TAG = "localhost/tusd-py:test"
MAX_SIZE = 50_000_000
SHUTTING_DOWN = "shutting down: no new connections"
DRAINED = "stopped; every in-flight request finished"


@pytest.fixture(scope="module")
def image(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    reason = None
    if missing := missing_tools():
        reason = f"{', '.join(missing)} missing (Debian packages; scripts/ensure-system-packages.sh installs them)"
    elif os.geteuid() != 0:
        reason = "debootstrap and rootful podman need root"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the container image cannot be tested: {reason}")
        pytest.skip(reason)
    build_image(TAG, base_image(), dist, tmp_path_factory.mktemp("image-context"))
    return TAG


@pytest.fixture
def container(image: str) -> Iterator[tuple[str, str]]:
    """The image running as a container with the demo and a size limit set by variables: (name, origin)."""
    name = f"tusd-py-test-{os.getpid()}"
    podman("rm", "--force", name, check=False)
    port = free_port()
    run_container(name, image, port, {"TUSD_PY_MAX_SIZE": str(MAX_SIZE), "TUSD_PY_DEMO": "true"})
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        podman("rm", "--force", "--volumes", name, check=False)


def test_the_image_declares_user_volume_port_health_and_stop_signal(image: str) -> None:
    (inspected,) = json.loads(podman("image", "inspect", image).stdout)
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert list(config["Volumes"]) == ["/data"]
    assert list(config["ExposedPorts"]) == ["1080/tcp"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Entrypoint"] == ["tusd-py"] and config["Cmd"] == ["serve"]
    env = dict(entry.split("=", 1) for entry in config["Env"])
    assert env["TUSD_PY_HOST"] == "0.0.0.0" and env["TUSD_PY_PORT"] == "1080" and env["TUSD_PY_STORAGE_DIR"] == "/data"
    assert env["TUSD_PY_PROCESSES"] == "auto"  # every core the container may use
    # Drains before the engines' default 10 s grace runs out.
    assert float(env["TUSD_PY_SHUTDOWN_TIMEOUT"]) < 10
    # Docker format: the OCI format would have dropped the health check.
    assert "/healthz" in " ".join(inspected["Healthcheck"]["Test"])


def _curl_upload(origin: str, payload: Path) -> str:
    """Create and fill an upload with curl, as a person at a shell would; its URL."""

    def curl(*args: str) -> dict[str, str]:
        done = subprocess.run(
            ["curl", "--silent", "--show-error", "--dump-header", "-", "--output", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        # The last header block (text mode reads CRLF as a newline): after any 100 Continue.
        status_line, *lines = done.stdout.strip().split("\n\n")[-1].splitlines()
        headers = dict(line.split(": ", 1) for line in lines)
        return {"status": status_line.split()[1], **{key.lower(): value for key, value in headers.items()}}

    name = base64.b64encode(b"curl.bin").decode()
    created = curl("-X", "POST", "-H", "Tus-Resumable: 1.0.0", "-H", f"Upload-Length: {payload.stat().st_size}",
                   "-H", f"Upload-Metadata: filename {name}", f"{origin}/files/")  # fmt: skip
    assert created["status"] == "201", created
    url = created["location"]
    assert url.startswith(f"{origin}/files/"), url
    patched = curl("-X", "PATCH", "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
                   "-H", "Content-Type: application/offset+octet-stream",
                   "--data-binary", f"@{payload}", url)  # fmt: skip
    assert patched["status"] == "204", patched
    assert patched["upload-offset"] == str(payload.stat().st_size)
    return url


def test_the_container_serves_curl_and_tus_js_client_and_drains_on_sigterm(
    container: tuple[str, str], tmp_path: Path
) -> None:
    name, origin = container
    client = Client(f"{origin}/files/")
    assert wait_until(lambda: healthy(f"{origin}/healthz"), timeout=60), logs(name)
    # The image's HEALTHCHECK, run the way the engine runs it (inside, as the image's user).
    podman("healthcheck", "run", name)
    assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
    # Settings reach the server through their environment twins.
    assert client.options().header("Tus-Max-Size") == str(MAX_SIZE)

    statuses = fetch_demo(origin)
    assert len(statuses) >= 5 and {url: status for url, status in statuses.items() if status != 200} == {}

    # curl; 1.5 MB, so curl also sends Expect: 100-continue.
    payload = tmp_path / "curl.bin"
    payload.write_bytes(os.urandom(1_500_000))
    url = _curl_upload(origin, payload)
    assert client.request("GET", url).body == payload.read_bytes()

    # tus-js-client, the scenario runner of tests/interop.
    node = node_with_package(JS_DIR, "tus-js-client")
    js_payload = tmp_path / "js.bin"
    js_payload.write_bytes(os.urandom(3 * 1024 * 1024 + 12_345))
    args = {"scenario": "chunked", "endpoint": f"{origin}/files/", "file": str(js_payload), "headers": {},
            "chunkSize": 1024 * 1024}  # fmt: skip
    result = run_node_scenario(node, JS_DIR / "run-scenario.mjs", args, cwd=JS_DIR, timeout=90)
    assert result["ok"], f"{result['errors']}\n{result['requests']}\n{result['_stderr']}"
    assert [r["method"] for r in result["requests"]] == ["POST", "PATCH", "PATCH", "PATCH", "PATCH"]
    assert client.request("GET", result["uploadUrl"]).body == js_payload.read_bytes()

    _assert_sigterm_drains_a_download_in_flight(name, origin, client)


def _assert_sigterm_drains_a_download_in_flight(name: str, origin: str, client: Client) -> None:
    """A GET of a large upload is half read; `podman stop` (SIGTERM); the rest arrives; the server exits 0.

    The response is larger than every socket buffer between the two, so the request is still
    running when the signal comes. (A PATCH whose body is still arriving is drained too; that case
    is tests/integration/test_crash_safety.py's.)
    """
    payload = os.urandom(32 * 1024 * 1024)
    url = client.create(len(payload))
    assert client.patch(url, 0, payload).status == 204
    connection = http.client.HTTPConnection("127.0.0.1", int(origin.rsplit(":", 1)[1]), timeout=30)
    stop: subprocess.Popen[str] | None = None
    try:
        connection.request("GET", url.removeprefix(origin), headers={"Tus-Resumable": "1.0.0"})
        response = connection.getresponse()
        assert response.status == 200
        head = response.read(1024 * 1024)
        stop = subprocess.Popen(
            [*PODMAN, "stop", "--time", "30", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert wait_for_log(name, SHUTTING_DOWN, timeout=30), logs(name)
        assert head + response.read() == payload
        _, stop_stderr = stop.communicate(timeout=60)
        assert stop.returncode == 0, stop_stderr
    finally:
        connection.close()
        if stop is not None and stop.poll() is None:
            stop.kill()
            stop.wait()
    state = json.loads(podman("inspect", "--format", "{{json .State}}", name).stdout)
    text = logs(name)
    assert state["ExitCode"] == 0, text
    # The image runs a worker per core (--processes auto): each says what it drained; the download
    # was one request in one of them, and no worker cut anything.
    drained = [json.loads(line) for line in text.splitlines() if DRAINED in line]
    assert drained, text
    assert (sum(line["drained"] for line in drained), sum(line["cut"] for line in drained)) == (1, 0), text
    assert "Traceback" not in text
