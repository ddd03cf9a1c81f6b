"""Running the /demo scenarios: a built page, Node with playwright-core, Debian's chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.node_runner import run_node_scenario
from tests.real_parts import part_missing
from tusd_py.demo.routes import BUNDLE, STATIC_DIR

HERE = Path(__file__).parent
RUNNER = HERE / "run-demo.mjs"
ARTIFACTS = HERE / "artifacts"
DEMO_DIR = STATIC_DIR.parent
CHROMIUM = Path("/usr/bin/chromium")
SCENARIO_TIMEOUT_S = 75


def _npm(args: list[str], cwd: Path) -> None:
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed to build the demo and install playwright-core"
    done = subprocess.run([npm, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"npm {' '.join(args)} failed in {cwd}:\n{done.stdout}\n{done.stderr}"


def ensure_ready() -> str:
    """The node binary, once the page is built and playwright-core installed (both from lock files)."""
    node = shutil.which("node")
    if node is None or not CHROMIUM.exists():
        part_missing("needs node and Debian's chromium (bash scripts/ensure-system-packages.sh installs chromium)")
    if not (STATIC_DIR / BUNDLE).is_file():
        _npm(["ci", "--no-audit", "--no-fund"], DEMO_DIR)
        _npm(["run", "build"], DEMO_DIR)
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        _npm(["ci", "--no-audit", "--no-fund"], HERE)
    ARTIFACTS.mkdir(exist_ok=True)
    return node


def run_scenario(node: str, scenario: str, origin: str, token: str, **options: Any) -> dict[str, Any]:
    """Runs one scenario; fails the test on its error or on any page error / foreign request."""
    args = {"scenario": scenario, "origin": origin, "token": token, "artifacts": str(ARTIFACTS), **options}
    result = run_node_scenario(node, RUNNER, args, cwd=HERE, timeout=SCENARIO_TIMEOUT_S)
    assert not result["violations"], result["violations"]
    assert "error" not in result, result["error"]
    assert result["ok"], result
    return result
