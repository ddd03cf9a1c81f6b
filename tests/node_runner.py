"""Running one Node.js scenario script with JSON arguments and reading its JSON result line.

The real-client suites (tus-js-client under tests/interop, the browser recorder under
tests/browser) drive their clients from Node; this is how pytest hands a scenario over.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any


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
