"""Running the /demo scenarios: a built page, Node with playwright-core, Debian's chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.node_runner import run_node_scenario
from tests.real_parts import part_missing
from tusd_py.demo.routes import BUNDLE, STATIC_DIR

HERE = Path(__file__).parent
RUNNER = HERE / "run-demo.mjs"
OFFLINE_RUNNER = HERE / "run-offline.mjs"
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
    """Runs one scenario of run-demo.mjs; fails the test on its error or on any page error / foreign request."""
    args = {"scenario": scenario, "origin": origin, "token": token, "artifacts": str(ARTIFACTS), **options}
    return checked(run_node_scenario(node, RUNNER, args, cwd=HERE, timeout=SCENARIO_TIMEOUT_S))


def checked(result: dict[str, Any]) -> dict[str, Any]:
    assert not result["violations"], result["violations"]
    assert "error" not in result, f"{result['error']}\n{result.get('_stderr', '')}"
    assert result["ok"], result
    return result


def run_offline_scenario(
    node: str,
    scenario: str,
    origin: str,
    token: str,
    *,
    answers: dict[str, Callable[[], None]] | None = None,
    timeout: float = SCENARIO_TIMEOUT_S,
    **options: Any,
) -> dict[str, Any]:
    """Runs one scenario of run-offline.mjs, doing what it asks (a line ``{"ask": name}``: ``answers[name]()``,
    then ``done`` on its stdin); its result is checked as run_scenario's."""
    args = {"scenario": scenario, "origin": origin, "token": token, "artifacts": str(ARTIFACTS), **options}
    args["timeoutMs"] = (timeout - 10) * 1000
    answers = answers or {}
    # stderr to a file, not a pipe: it cannot fill up while we read stdout.
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            [node, str(OFFLINE_RUNNER), "--json", json.dumps(args)],
            cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )  # fmt: skip
        result = _converse(process, answers, timeout)
        errors.seek(0)
        stderr = errors.read()
    assert result is not None, f"runner printed no result (exit {process.returncode}):\n{stderr}"
    result["_stderr"] = stderr
    return checked(result)


def _converse(
    process: subprocess.Popen[str], answers: dict[str, Callable[[], None]], timeout: float
) -> dict[str, Any] | None:
    """Reads the runner's lines until it exits, answering its asks; its last result line (None: none)."""
    assert process.stdin is not None and process.stdout is not None
    killer = threading.Timer(timeout, process.kill)  # the runner's own limit is 10 s shorter
    killer.start()
    result: dict[str, Any] | None = None
    try:
        for line in process.stdout:  # ends when the runner exits (or is killed)
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            if "ask" in message:
                answers[message["ask"]]()
                process.stdin.write("done\n")
                process.stdin.flush()
            else:
                result = message
        process.wait(10)
    finally:
        killer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return result
