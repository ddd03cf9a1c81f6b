"""The container image under test: a Debian base made with debootstrap (cached), built and run with podman.

Image registries are out of reach, so the image is built over a base made from Debian packages
(``debootstrap --variant=minbase`` with python3, python3-venv and ca-certificates) and imported into
podman as ``localhost/tusd-py-base:bookworm-KEY``, KEY a hash of the debootstrap command. A cold base
takes minutes; it is kept in podman's store and, as a tar, in ~/.cache/tusd-py/base/ (so a wiped
store costs only the import). The image itself is built by scripts/build-image.sh, as `make image`.

podman runs with runc (crun fails on some cgroup layouts) and with ulimits every host allows.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PODMAN = ("podman", "--runtime", "runc")
ULIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768")
MIRROR = os.environ.get("DEBOOTSTRAP_MIRROR", "http://deb.debian.org/debian")
DEBOOTSTRAP = (
    "debootstrap",
    "--variant=minbase",
    "--include=python3,python3-venv,ca-certificates",
    "bookworm",
)


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def missing_tools() -> list[str]:
    return [tool for tool in ("podman", "runc", "debootstrap") if shutil.which(tool) is None]


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tusd-py"


def base_image() -> str:
    """The Debian bookworm base in podman's store: reused, imported from the cached tar, or made."""
    key = hashlib.sha256(" ".join((*DEBOOTSTRAP, MIRROR)).encode()).hexdigest()[:12]
    tag = f"localhost/tusd-py-base:bookworm-{key}"
    if podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    tar = cache_dir() / "base" / f"bookworm-{key}.tar"
    if not tar.is_file():
        _debootstrap(tar)
    podman("import", str(tar), tag, timeout=300)
    return tag


def _debootstrap(tar: Path) -> None:
    tar.parent.mkdir(parents=True, exist_ok=True)
    rootfs = tar.with_suffix(".rootfs")
    shutil.rmtree(rootfs, ignore_errors=True)
    try:
        done = subprocess.run(
            [*DEBOOTSTRAP, str(rootfs), MIRROR], capture_output=True, text=True, timeout=1200, check=False
        )
        assert done.returncode == 0, f"debootstrap failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        # The package lists and downloaded .debs are of no use inside an image.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = tar.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=300)
        partial.rename(tar)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def build_image(tag: str, base: str, dist: Path, context: Path) -> str:
    """Build ``tag`` from the wheel in ``dist`` with scripts/build-image.sh; the build's output."""
    previous = podman("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
    env = {**os.environ, "DIST": str(dist), "CONTEXT": str(context), "PYTHON": str(REPO / ".venv/bin/python")}
    command = ["bash", "scripts/build-image.sh", tag, "--runtime", "runc", "--build-arg", f"BASE={base}", *ULIMITS]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"image build failed:\n{done.stdout[-5000:]}\n{done.stderr[-5000:]}"
    current = podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    if previous and previous != current:
        podman("rmi", previous, check=False)  # the last run's image, now untagged
    return done.stdout


def logs(container: str) -> str:
    done = podman("logs", container, check=False)
    return done.stdout + done.stderr


def wait_for_log(container: str, text: str, timeout: float) -> bool:
    """Poll the container's log until ``text`` appears (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in logs(container):
            return True
        time.sleep(0.2)
    return False


def run_container(name: str, image: str, port: int, env: dict[str, str], args: Sequence[str] = ()) -> None:
    """Start ``image`` detached, its port 1080 published on 127.0.0.1:``port``."""
    settings = [f"--env={key}={value}" for key, value in env.items()]
    podman("run", "--detach", "--name", name, *ULIMITS, "--publish", f"127.0.0.1:{port}:1080", *settings, image, *args)
