"""Turning measurements into the table, the ratios and the target verdicts (text and Markdown).

Ratios pair runs: tusd-py's run N against the peer's run N, which ran minutes apart at most on
the same machine, so a noisy neighbour hurts both sides of a pair more or less alike. A target
"holds" when it holds in every run, is "mixed" when it holds in some, and "misses" otherwise.
The benchmark never fails on a target: it reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MiB = 1024 * 1024
GiB = 1024 * MiB
THROUGHPUT = {"small": "uploads_s"}  # the metric a workload is judged by; MiB/s otherwise
SUBJECT = "tusd-py"


@dataclass
class Measurement:
    peer: str
    role: str
    backend: str
    workload: str
    run: int
    result: dict[str, Any] | None = None
    peak_rss: int | None = None
    server_cpu_s: float | None = None
    load_1m: float | None = None  # the machine's load average when the measurement started
    storage_cpu_s: float | None = None  # SeaweedFS, for S3 workloads
    error: str | None = None
    s3_requests: float | None = None  # tusd-py on S3: its S3 requests (its /metrics) during the upload phase
    coordination: dict[str, Any] | None = None  # redis+pg rows: CPU of Redis and PostgreSQL, counts (scaleout.py)
    # Issue 27's tusd-py rows: tusd-py's CPU from the start of the upload phase until its processing
    # of those uploads is done too (its process tree idle again), so deferred work is counted.
    processed_cpu_s: float | None = None

    def cpu_per_upload_ms(self) -> float | None:
        if self.server_cpu_s is None or not self.result or not self.result.get("uploads"):
            return None
        return 1000 * self.server_cpu_s / float(self.result["uploads"])

    def processed_cpu_per_upload_ms(self) -> float | None:
        if self.processed_cpu_s is None or not self.result or not self.result.get("uploads"):
            return None
        return 1000 * self.processed_cpu_s / float(self.result["uploads"])

    def cpu_per_gib_s(self) -> float | None:
        if self.server_cpu_s is None or not self.result or not self.result.get("bytes"):
            return None
        return self.server_cpu_s / (float(self.result["bytes"]) / GiB)

    @property
    def ok(self) -> bool:
        return self.result is not None and self.error is None and str(self.result["verified"]).startswith("ok")

    def metric(self, name: str) -> float | None:
        if not self.ok or self.result is None:
            return None
        return float(self.result[name])


@dataclass(frozen=True)
class Target:
    backend: str
    workload: str  # one workload; for "rss" also "*" (all) or a comma-separated list
    against: str  # a peer name, or "rss"
    threshold: float  # a ratio, or bytes for "rss"
    label: str


@dataclass
class Verdict:
    target: Target
    values: list[float | None] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # for "rss": the workload of each run's peak

    @property
    def word(self) -> str:
        known = [v for v in self.values if v is not None]
        if not known:
            return "n/a"
        passed = [self._passes(v) for v in known]
        if all(passed) and len(known) == len(self.values):
            return "HOLDS"
        return "mixed" if any(passed) else "MISSES"

    def _passes(self, value: float) -> bool:
        if self.target.against == "rss":
            return value <= self.target.threshold
        return value >= self.target.threshold

    def shown(self) -> str:
        if self.target.against == "rss":
            return ", ".join(
                "-" if v is None else f"{v / MiB:.0f} MiB ({w})" for v, w in zip(self.values, self.where, strict=True)
            )
        return ", ".join("-" if v is None else f"{v:.2f}x" for v in self.values)


def metric_of(workload: str) -> str:
    return THROUGHPUT.get(workload, "mib_s")


def find(data: list[Measurement], backend: str, workload: str, peer: str, run: int) -> Measurement | None:
    for m in data:
        if (m.backend, m.workload, m.peer, m.run) == (backend, workload, peer, run):
            return m
    return None


def ratio(data: list[Measurement], backend: str, workload: str, peer: str, run: int) -> float | None:
    metric = metric_of(workload)
    ours = find(data, backend, workload, SUBJECT, run)
    theirs = find(data, backend, workload, peer, run)
    if ours is None or theirs is None:
        return None
    a, b = ours.metric(metric), theirs.metric(metric)
    if a is None or b is None or b == 0:
        return None
    return a / b


def evaluate(data: list[Measurement], targets: list[Target], runs: int) -> list[Verdict]:
    verdicts = []
    for target in targets:
        verdict = Verdict(target)
        workloads = (
            sorted({m.workload for m in data if m.backend == target.backend})
            if target.workload == "*"
            else target.workload.split(",")
        )
        for run in range(1, runs + 1):
            if target.against == "rss":
                peaks = [
                    (m.peak_rss, w)
                    for w in workloads
                    if (m := find(data, target.backend, w, SUBJECT, run)) is not None and m.peak_rss is not None
                ]
                peak, where = max(peaks) if peaks else (None, "")
                verdict.values.append(peak)
                verdict.where.append(where)
            else:
                verdict.values.append(ratio(data, target.backend, target.workload, target.against, run))
        if any(find(data, target.backend, w, SUBJECT, 1) for w in workloads):
            verdicts.append(verdict)
    return verdicts


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table_rows(data: list[Measurement], backend: str, workload: str) -> list[list[str]]:
    rows = []
    for m in data:
        if (m.backend, m.workload) != (backend, workload):
            continue
        r = m.result or {}
        verified = m.error or str(r.get("verified", "-"))
        rows.append(
            [
                m.peer + (" (client ceiling)" if m.role == "sink" else ""),
                str(m.run),
                _fmt(r.get("mib_s")),
                _fmt(r.get("uploads_s")),
                _fmt(r.get("patch_p50_ms")),
                _fmt(r.get("patch_p99_ms")),
                _fmt(None if m.peak_rss is None else m.peak_rss / MiB, 0),
                _fmt(m.server_cpu_s),
                _fmt(m.cpu_per_upload_ms(), 2),
                _fmt(m.cpu_per_gib_s(), 2),
                _fmt(m.storage_cpu_s),
                _fmt(None if m.s3_requests is None or not r.get("uploads") else m.s3_requests / r["uploads"]),
                _fmt(m.load_1m),
                verified if len(verified) < 90 else verified[:87] + "...",
            ]
        )
    return rows


HEADER = [
    "server",
    "run",
    "MiB/s",
    "uploads/s",
    "PATCH p50 ms",
    "PATCH p99 ms",
    "peak RSS MiB",
    "server CPU s",
    "CPU ms/upload",
    "CPU s/GiB",
    "S3 CPU s",
    "S3 req/upload",
    "load 1m",
    "verified",
]


def markdown_table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    return cell.replace(",", "").replace(".", "").replace("-", "").isdigit() or cell == "-"


def text_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = [bool(rows) and all(_numeric(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if right[i] else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    )


def ratio_lines(data: list[Measurement], backend: str, workload: str, runs: int) -> list[str]:
    peers = []
    for m in data:
        mine = (m.backend, m.workload) == (backend, workload)
        if mine and m.peer != SUBJECT and m.role not in ("sink", "variant") and m.peer not in peers:
            peers.append(m.peer)
    unit = "uploads/s" if metric_of(workload) == "uploads_s" else "MiB/s"
    lines = []
    for peer in peers:
        values = [ratio(data, backend, workload, peer, run) for run in range(1, runs + 1)]
        shown = ", ".join(f"run {i}: " + ("-" if v is None else f"{v:.2f}x") for i, v in enumerate(values, 1))
        lines.append(f"tusd-py / {peer} ({unit}): {shown}")
    return lines


def render(
    data: list[Measurement], verdicts: list[Verdict], runs: int, descriptions: dict[str, str], markdown: bool
) -> str:
    out: list[str] = []
    for backend in ("fs", "s3"):
        workloads = []
        for m in data:
            if m.backend == backend and m.workload not in workloads:
                workloads.append(m.workload)
        for workload in workloads:
            title = f"{'filesystem' if backend == 'fs' else 'S3'} / {workload}: {descriptions.get(workload, '')}"
            rows = table_rows(data, backend, workload)
            if markdown:
                out += [f"### {title}", "", markdown_table(rows, HEADER), ""]
                out += [f"- {line}" for line in ratio_lines(data, backend, workload, runs)]
            else:
                out += [f"== {title}", text_table(rows, HEADER)]
                out += [f"   {line}" for line in ratio_lines(data, backend, workload, runs)]
            out.append("")
    if verdicts:
        out += ["### Targets for tusd-py" if markdown else "== Targets for tusd-py", ""]
        rows = [[v.word, v.target.label, v.shown()] for v in verdicts]
        header = ["verdict", "target", "per run"]
        out += [markdown_table(rows, header) if markdown else text_table(rows, header), ""]
    return "\n".join(out)
