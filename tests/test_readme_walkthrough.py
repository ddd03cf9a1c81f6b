"""The README's curl walkthrough, executed against a live server so the docs cannot drift."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conformance.live_server import LiveServer

README = Path(__file__).resolve().parent.parent / "README.md"


def walkthrough_script() -> str:
    text = README.read_text()
    block = re.search(r"<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    assert block, "README lost its walkthrough markers"
    return block.group(1)


@pytest.mark.slow
def test_readme_walkthrough_runs_as_documented(live_server: LiveServer, tmp_path: Path) -> None:
    script = walkthrough_script().replace("/tmp/hello.txt", str(tmp_path / "hello.txt"))
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
