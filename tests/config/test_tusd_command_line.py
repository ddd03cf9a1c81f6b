"""A tusd v2.10 command line starts tusd-py, and every flag on it takes effect.

The server is a real subprocess started with nothing but tusd's spellings (one dash, Go's
``-name=value`` and duration syntax); each flag is then checked from the outside: where it listens,
what it stores, what OPTIONS, CORS, hooks, metrics and logs show. How each flag is read into the
configuration is checked without a server below (durations, inverted and merged switches).
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from conformance.live_server import free_port, stop_by_pid
from tests.certs import self_signed
from tests.client.tus import TUS, id_of
from tests.hooks.tusd_receiver import TusdReceiver
from tusd_py.config.loading import load_config
from tusd_py.server.cli import parse_args

pytestmark = pytest.mark.slow


class TusdStyleServer:
    """``python -m tusd_py`` with exactly the given arguments (no flag of ours added)."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tusd_py", *self.args], stdout=self._log, stderr=self._log
        )

    async def wait_until_serving(self, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            while "serving" not in self.log():  # bounded by the timeout
                assert self.process is not None and self.process.poll() is None, self.log()
                await asyncio.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            stop_by_pid(self.process, signal.SIGTERM, 10)
            self._log.close()
            self.process = None


@pytest.fixture
def started() -> Iterator[list[TusdStyleServer]]:
    servers: list[TusdStyleServer] = []
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
async def receiver(aiohttp_server: Any) -> TusdReceiver:
    receiver = TusdReceiver(None)  # a tusd command line signs nothing
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    receiver.url = str(server.make_url("/hook"))
    return receiver


async def serve(started: list[TusdStyleServer], args: list[str], tmp_path: Path) -> TusdStyleServer:
    server = TusdStyleServer(args, tmp_path / f"server-{len(started)}.log")
    started.append(server)
    server.start()
    await server.wait_until_serving()
    return server


async def test_a_tusd_command_line_serves_with_every_flag_in_effect(
    started: list[TusdStyleServer], receiver: TusdReceiver, tmp_path: Path
) -> None:
    port, upload_dir = free_port(), tmp_path / "uploads"
    server = await serve(
        started,
        [
            "-host", "127.0.0.1", "-port", str(port), "-upload-dir", str(upload_dir), "-base-path", "/uploads/",
            "-behind-proxy", "-max-size", "1000", "-disable-termination", "-disable-download",
            "-hooks-http", receiver.url, "-hooks-http-forward-headers", "X-Tenant",
            "-hooks-enabled-events", "pre-create,post-create,post-finish", "-hooks-http-timeout", "5s",
            "-progress-hooks-interval", "2s", "-expose-metrics=true", "-metrics-path", "/tusd-metrics",
            "-cors-allow-origin", r"^https://app\.example$", "-cors-allow-credentials",
            "-cors-allow-headers", "X-Custom", "-cors-expose-headers", "X-Out", "-cors-max-age", "600",
            "-network-timeout", "30s", "-shutdown-timeout", "5s", "-acquire-lock-timeout", "4s", "-log-format", "json",
        ],
        tmp_path,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{base}/uploads/") as resp:  # -base-path, -max-size, -disable-termination
            assert resp.status == 204
            assert resp.headers["Tus-Max-Size"] == "1000"
            assert "termination" not in resp.headers["Tus-Extension"].split(",")
        created = await http.post(
            f"{base}/uploads/",
            headers={
                **TUS,
                "Upload-Length": "3",
                "Upload-Metadata": "filename YS50eHQ=",
                "X-Forwarded-Host": "uploads.example",  # -behind-proxy
                "X-Forwarded-Proto": "https",
                "X-Tenant": "acme",
            },
        )
        assert created.status == 201, await created.text()
        location = created.headers["Location"]
        assert location.startswith("https://uploads.example/uploads/prefix-")  # -hooks-http changed the id
        upload_id = id_of(location)
        assert (upload_dir / upload_id).exists()  # -upload-dir
        path = f"{base}/uploads/{upload_id}"
        async with http.post(
            f"{base}/uploads/", headers={**TUS, "Upload-Length": "1001", "Upload-Metadata": "filename YQ=="}
        ) as big:
            assert big.status == 413  # -max-size
        patch_headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
        async with http.patch(path, headers=patch_headers, data=b"abc") as resp:
            assert resp.status == 204
        async with http.get(path) as resp:
            assert resp.status == 405  # -disable-download
        async with http.delete(path, headers=TUS) as resp:
            assert resp.status == 405  # -disable-termination
        # -hooks-http: tusd's format and tusd's default spelling of events; -hooks-enabled-events.
        finished = await receiver.wait_for("post-finish", upload_id)
        assert finished["Event"]["Upload"]["Size"] == 3
        assert {r["Type"] for r in receiver.requests} <= {"pre-create", "post-create", "post-finish"}
        hook_headers = receiver.request_headers[receiver.requests.index(receiver.of("pre-create")[0])]
        assert hook_headers["X-Tenant"] == "acme"  # -hooks-http-forward-headers
        # CORS: -cors-allow-origin (a regex), -cors-allow-credentials, -cors-allow-headers, -cors-max-age,
        # -cors-expose-headers; the forwarded hook header is allowed too.
        preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        async with http.options(f"{base}/uploads/", headers=preflight) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
            assert resp.headers["Access-Control-Allow-Credentials"] == "true"
            assert resp.headers["Access-Control-Max-Age"] == "600"
            allowed = resp.headers["Access-Control-Allow-Headers"]
            assert "X-Custom" in allowed and "X-Tenant" in allowed and "Upload-Offset" in allowed
        async with http.head(path, headers={**TUS, "Origin": "https://app.example"}) as resp:
            assert "X-Out" in resp.headers["Access-Control-Expose-Headers"]
        async with http.options(f"{base}/uploads/", headers={**preflight, "Origin": "https://evil.example"}) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers
        # -expose-metrics, -metrics-path: tusd's names on tusd's path.
        async with http.get(f"{base}/tusd-metrics") as resp:
            text = await resp.text()
            assert resp.status == 200 and "\ntusd_uploads_created " in text and "\ntusd_bytes_received " in text
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 404
    server.stop()
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert any(line.get("event") == "serving" for line in lines)  # -log-format json


def test_tusds_syntax_reads_into_our_settings() -> None:
    """Durations, Go switches, inverted and merged switches, and tusd's defaults for its spellings."""
    args = [
        "-network-timeout=30s", "--shutdown-timeout", "1m30s", "-acquire-lock-timeout", "500ms",
        "-progress-hooks-interval", "2s", "-hooks-http-timeout=15s", "-hooks-http-retry", "5",
        "-expose-metrics=false", "-behind-proxy=false", "-disable-termination", "-disable-concatenation=true",
        "-s3-bucket", "b", "-s3-object-prefix", "tus", "-s3-endpoint", "http://127.0.0.1:9000",
        "-unix-sock", "/tmp/tusd.sock", "-log-format", "text", "-hooks-http", "http://127.0.0.1:1/hook",
        "-tls-certificate", "/c.pem", "-tls-key", "/k.pem", "-tls-mode", "tls13", "-max-size", "0",
    ]  # fmt: skip
    config = load_config(parse_args(args), {})
    assert (config.body_idle_timeout, config.shutdown_timeout, config.lock_timeout) == (30.0, 90.0, 0.5)
    assert (config.progress_hooks_interval, config.hooks_timeout, config.hooks_retries) == (2.0, 15.0, 5)
    assert config.no_metrics and not config.behind_proxy
    assert config.disabled_extensions == ["termination", "concatenation", "concatenation-unfinished"]
    assert (config.storage, config.s3_bucket, config.s3_prefix, config.s3_path_style) == ("s3", "b", "tus/", True)
    assert config.unix_socket == "/tmp/tusd.sock" and config.log_format == "console"
    assert config.hooks_url == "http://127.0.0.1:1/hook" and config.hooks_format == "tusd"
    assert (config.tls_certificate, config.tls_key, config.tls_mode) == ("/c.pem", "/k.pem", "tls13")
    assert config.max_size is None  # tusd's 0: no limit
    # Our own spellings keep meaning ours: no tusd behaviour is implied.
    ours = load_config(parse_args(["--hooks-url", "http://127.0.0.1:1/hook", "--s3-endpoint", "http://x"]), {})
    assert ours.hooks_format == "tusd-py" and not ours.s3_path_style


@pytest.fixture
async def https_client(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, ssl.SSLContext, Path]]:
    cert, _ = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    async with aiohttp.ClientSession() as http:
        yield http, trust, cert


async def test_tls_serves_https_in_tusds_modes(
    started: list[TusdStyleServer], https_client: tuple[aiohttp.ClientSession, ssl.SSLContext, Path], tmp_path: Path
) -> None:
    http, trust, cert = https_client
    port = free_port()
    args = ["-host", "127.0.0.1", "-port", str(port), "-upload-dir", str(tmp_path / "d")]
    tls = ["-tls-certificate", str(cert), "-tls-key", str(cert.with_suffix(".key")), "-tls-mode", "tls13"]
    await serve(started, [*args, *tls], tmp_path)
    async with http.post(f"https://127.0.0.1:{port}/files/", headers={**TUS, "Upload-Length": "1"}, ssl=trust) as resp:
        assert resp.status == 201
        assert resp.headers["Location"].startswith(f"https://127.0.0.1:{port}/files/")
    only_tls12 = ssl.create_default_context(cafile=str(cert))
    only_tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(aiohttp.ClientConnectorError):  # -tls-mode tls13 refuses TLS 1.2
        await http.get(f"https://127.0.0.1:{port}/healthz", ssl=only_tls12)


async def test_a_unix_socket_replaces_host_and_port(started: list[TusdStyleServer], tmp_path: Path) -> None:
    sock = tmp_path / "tusd.sock"
    await serve(started, ["-unix-sock", str(sock), "-upload-dir", str(tmp_path / "d")], tmp_path)
    connector = aiohttp.UnixConnector(path=str(sock))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post("http://tus/files/", headers={**TUS, "Upload-Length": "2"}) as resp,
    ):
        assert resp.status == 201
        assert resp.headers["Location"].startswith("http://tus/files/")
