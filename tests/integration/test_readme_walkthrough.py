"""The README's curl walkthrough and tuspy example, executed against a live server so the docs cannot drift."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.client import Client
from conformance.live_server import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:1080/files/"


def readme_block(name: str, language: str) -> str:
    text = README.read_text()
    block = re.search(rf"<!-- {name}:start -->\s*```{language}\n(.*?)```\s*<!-- {name}:end -->", text, re.S)
    assert block, f"README lost its {name} markers"
    return block.group(1)


@pytest.mark.slow
def test_readme_walkthrough_runs_as_documented(live_server: LiveServer, tmp_path: Path) -> None:
    script = readme_block("walkthrough", "sh").replace("/tmp/hello.txt", str(tmp_path / "hello.txt"))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={"TUS": live_server.url, "PATH": "/usr/bin:/bin:/usr/local/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"upload URL: {live_server.url}")
    assert lines[1:] == ["204", "Upload-Offset: 10", "204", "identical", "204", "404"], result.stdout


@pytest.mark.slow
@pytest.mark.interop
def test_readme_tuspy_example_uploads_the_file(live_server: LiveServer, tmp_path: Path) -> None:
    code = readme_block("tuspy", "python")
    assert README_URL in code and '"memo.wav"' in code
    payload = bytes(range(256)) * 30_000  # 7.3 MiB: two PATCHes of the example's 5 MiB chunks
    (tmp_path / "memo.wav").write_bytes(payload)
    result = subprocess.run(
        [sys.executable, "-c", code.replace(README_URL, live_server.url)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith(live_server.url), result.stdout
    head = Client(live_server.url).head(url)
    assert head.header("Upload-Offset") == head.header("Upload-Length") == str(len(payload))
    assert Client(live_server.url).request("GET", url).body == payload
