"""Running one Node.js scenario script with JSON arguments and reading its JSON result line.

The real-client suites (tus-js-client under tests/interop, the browser recorder under
tests/browser) drive their clients from Node; this is how pytest hands a scenario over.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.real_parts import part_missing


def node_with_package(js_dir: Path, package: str) -> str:
    """The node binary, once ``js_dir`` has ``package`` installed from its lock file (npm ci when missing)."""
    node_bin = shutil.which("node")
    if node_bin is None:
        part_missing("node is not installed")
    if not (js_dir / "node_modules" / package).is_dir():
        npm = shutil.which("npm")
        if npm is None:
            part_missing("npm is not installed")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=js_dir,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return node_bin


def run_node_scenario(node: str, runner: Path, args: dict[str, Any], *, cwd: Path, timeout: float) -> dict[str, Any]:
    """Run ``runner --json ARGS``; return its last JSON line, with its stderr under ``_stderr``."""
    done = subprocess.run(
        [node, str(runner), "--json", json.dumps({**args, "timeoutMs": (timeout - 10) * 1000})],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"runner printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    result["_stderr"] = done.stderr
    return result
