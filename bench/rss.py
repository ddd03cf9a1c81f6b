"""Memory and CPU of a server process, read from /proc (Linux; no psutil).

``VmHWM`` is the kernel's own high-water mark of a process's resident set, so the peak is exact
without sampling. A server that forks helpers would hide memory in its children, so
:class:`TreeSampler` also samples the summed ``VmRSS`` of the process and its descendants; the
benchmark reports the larger of the two.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

KiB = 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, field: str) -> int | None:
    """A ``kB`` field of /proc/PID/status (VmHWM, VmRSS, ...) in KiB; None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def peak_rss_bytes(pid: int) -> int | None:
    kib = status_kib(pid, "VmHWM")
    return None if kib is None else kib * KiB


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of the process and its reaped children so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17.
    return sum(int(value) for value in fields[11:15]) / CLOCK_TICKS


def tree_cpu_seconds(pid: int | None) -> float:
    """CPU seconds of a process and all its descendants (a supervisor's workers), living or reaped."""
    if pid is None:
        return 0.0
    return sum(cpu_seconds(p) or 0.0 for p in [pid, *descendants(pid)])


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class TreeSampler:
    """Samples the summed VmRSS of a process tree in a background thread until stopped."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)
        self._tree = [pid]
        self._ticks = 0

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._ticks % 20 == 0:  # re-list the tree every ~2 s: a /proc walk is not free
                self._tree = [self.pid, *descendants(self.pid)]
            self._ticks += 1
            total = sum(status_kib(pid, "VmRSS") or 0 for pid in self._tree) * KiB
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval)
