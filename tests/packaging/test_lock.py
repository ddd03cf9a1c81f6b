"""The locks agree with pyproject.toml: every declared requirement is pinned, within its range, with hashes.

`make run` and `make test` install requirements/runtime.lock and requirements/dev.lock exactly; if someone
edits pyproject.toml without `make lock`, these tests fail before a fresh machine installs something else.
Offline: the files are read and compared, nothing is resolved.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = REPO / "requirements" / "runtime.lock"
DEV_LOCK = REPO / "requirements" / "dev.lock"
BUILD_IN = REPO / "requirements" / "build.in"
PROJECT = "tusd-py"


@dataclass
class Pin:
    version: Version
    hashes: int = 0
    via: list[str] = field(default_factory=list)


def parse_lock(path: Path) -> dict[str, Pin]:
    """Read a `uv pip compile --generate-hashes` file: `name==version \\`, hash lines, `# via` comments."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        pinned = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", raw)
        if pinned:
            current = Pin(Version(pinned.group(2)))
            pins[canonicalize_name(pinned.group(1))] = current
        elif current is not None and line.startswith("--hash=sha256:"):
            current.hashes += 1
        elif current is not None and line.startswith("#"):
            text = line.lstrip("#").strip()
            text = text.removeprefix("via").strip()
            if text:
                current.via.append(text)
    return pins


def declared(extras: bool) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    if extras:
        for group in project["optional-dependencies"].values():
            group_requirements = [Requirement(text) for text in group]
            requirements += [r for r in group_requirements if canonicalize_name(r.name) != PROJECT]
    requirements += [Requirement(line) for line in BUILD_IN.read_text().splitlines() if line.strip()]
    return requirements


@pytest.mark.parametrize(("lock", "extras"), [(RUNTIME_LOCK, False), (DEV_LOCK, True)], ids=["runtime", "dev"])
def test_every_declared_requirement_is_pinned_inside_its_range(lock: Path, extras: bool) -> None:
    pins = parse_lock(lock)
    problems = []
    for requirement in declared(extras):
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement} is declared but not in {lock.name}: run `make lock`")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{requirement} is declared but {lock.name} pins {pin.version}: run `make lock`")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("lock", "extras"), [(RUNTIME_LOCK, False), (DEV_LOCK, True)], ids=["runtime", "dev"])
def test_the_lock_holds_nothing_that_pyproject_no_longer_asks_for(lock: Path, extras: bool) -> None:
    names = {canonicalize_name(requirement.name) for requirement in declared(extras)}
    stale = [
        name
        for name, pin in parse_lock(lock).items()
        if any(via.startswith(PROJECT) for via in pin.via) and name not in names
    ]
    assert not stale, f"{lock.name} pins {stale} for tusd-py, which pyproject.toml no longer declares: `make lock`"


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=["runtime", "dev"])
def test_every_pin_carries_hashes(lock: Path) -> None:
    pins = parse_lock(lock)
    assert pins, f"{lock.name} pins nothing"
    assert [name for name, pin in pins.items() if pin.hashes == 0] == []


def test_the_dev_lock_pins_every_runtime_package_the_same() -> None:
    """`make run` on a venv `make test` built changes nothing, so the two locks must agree."""
    runtime, dev = parse_lock(RUNTIME_LOCK), parse_lock(DEV_LOCK)
    differ = {name: (pin.version, dev[name].version if name in dev else None) for name, pin in runtime.items()}
    assert {name: pair for name, pair in differ.items() if pair[0] != pair[1]} == {}


def test_the_parser_sees_a_range_the_lock_breaks(tmp_path: Path) -> None:
    """The check above can fail: a pin outside a declared range is reported."""
    lock = tmp_path / "x.lock"
    lock.write_text("redis==4.0.0 \\\n    --hash=sha256:00\n    # via tusd-py (pyproject.toml)\n")
    pin = parse_lock(lock)["redis"]
    assert pin.hashes == 1 and pin.via == ["tusd-py (pyproject.toml)"]
    assert not Requirement("redis>=5").specifier.contains(pin.version)
