"""Memory stays flat whatever the upload size: the server's peak RSS after a small upload and
after one 32 times larger differ by less than a fixed allowance (bodies stream in bounded batches)."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import pytest

from conformance.client import Client
from conformance.live_server import LiveServer

pytestmark = pytest.mark.slow

BLOCK = os.urandom(1024 * 1024)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def stream_upload(server: LiveServer, mib: int) -> None:
    client = Client(server.url)
    url = client.create(mib * 1024 * 1024)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.putrequest("PATCH", url.split(str(server.port), 1)[1])
    for name, value in {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Length": str(mib * 1024 * 1024),
                        "Content-Type": "application/offset+octet-stream"}.items():  # fmt: skip
        conn.putheader(name, value)
    conn.endheaders()
    for _ in range(mib):  # bounded: one MiB block per iteration
        conn.send(BLOCK)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 204
    assert client.head(url).header("Upload-Offset") == str(mib * 1024 * 1024)


def test_peak_rss_does_not_grow_with_upload_size(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "data", "--max-size", str(4 * 1024**3)) as server:
        assert server.process is not None
        stream_upload(server, 8)
        after_small = peak_rss_mib(server.process.pid)
        stream_upload(server, 256)
        after_large = peak_rss_mib(server.process.pid)
    print(f"peak RSS: {after_small:.1f} MiB after 8 MiB, {after_large:.1f} MiB after 256 MiB")
    assert after_large - after_small < 24, (after_small, after_large)
