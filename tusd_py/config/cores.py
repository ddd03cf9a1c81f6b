"""``--processes auto``: how many cores this process may use.

The CPUs it may run on (``os.sched_getaffinity``: a cpuset, ``taskset``, a container's
``--cpuset-cpus``), fewer when a cgroup v2 CPU quota (``cpu.max``: ``docker run --cpus 1.5``,
a Kubernetes CPU limit) allows less: a worker per core it cannot have only adds contention.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

#: cgroup v2's CPU quota of this process's cgroup (the unified hierarchy, as containers mount it).
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
MOST = 256  # --processes' upper bound


def available_cores(cpu_max: Path = CPU_MAX) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _quota(cpu_max)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, min(cores, MOST))


def _quota(cpu_max: Path) -> float | None:
    """CPUs' worth of time the cgroup may use ("max 100000": unlimited -> None)."""
    try:
        limit, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max" or float(period) <= 0:
        return None
    return float(limit) / float(period)
