"""Issue 27's targets, printed from one run: every tusd-py configuration against one embedded process.

The section has three parts, from the filesystem ``small`` (2,000 x 4 KiB, 64 in flight) and
``conc16`` (16 x 32 MiB) measurements of the rows "tusd-py" (one process, embedded), "tusd-py x2"
(``--processes 2``, embedded), "tusd-py redis+pg" and "tusd-py redis+pg x2" (bench/scaleout.py)
and "@tus/server", all with processing on:

- per configuration and run: throughput, its ratio to one embedded process and to @tus/server,
  the server's CPU per upload (a supervisor's workers summed), Redis + PostgreSQL CPU per upload,
  and what coordination cost per upload (PostgreSQL statements, Redis commands sent by tusd-py
  and those its scripts ran);
- the targets, each with its figure per run, the ratio, and met / not met ("met in k of n runs"
  when the runs disagree; "not measured" when a row is missing, failed or was refused);
- where the statements and commands of a small upload go (the first redis+pg measurement).

Runs pair as in report.py: a configuration's run N against the other's run N.
"""

from __future__ import annotations

from dataclasses import dataclass

from report import Measurement, find, markdown_table, text_table
from scaleout import ONE, REDIS_PG, REDIS_PG_X2, X2, counted_by_name

NODE = "@tus/server"
CONFIGS = (ONE, X2, REDIS_PG, REDIS_PG_X2)
SERVERS = (*CONFIGS, NODE)  # what `bench/run.py --targets` runs
WORKLOADS = ("small", "conc16")
# What the targets compare, per workload: `--targets` runs only these (the full run has redis+pg on conc16 too).
NEEDED = {"small": SERVERS, "conc16": (ONE, X2, NODE)}
NAMES = {
    ONE: "one process, embedded (SQLite, in-process locks)",
    X2: "--processes 2, embedded",
    REDIS_PG: "one process, --redis-url + --database-url",
    REDIS_PG_X2: "--processes 2, Redis + PostgreSQL",
    NODE: "@tus/server (Node), for reference",
}
BEST = "best tusd-py"  # the best configuration of a run


@dataclass(frozen=True)
class Goal:
    label: str
    workload: str
    subject: str  # a configuration, or BEST
    against: str | None  # a configuration, or None: the subject's own figure is judged
    measure: str  # "throughput", "cpu" (ms per upload), "statements" or "commands" (per upload)
    limit: float
    at_most: bool = False

    def passes(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit


GOALS = (
    Goal("embedded --processes 2 >= 1.3x one embedded process, small uploads/s",
         "small", X2, ONE, "throughput", 1.3),
    Goal("embedded --processes 2 >= 1.2x one embedded process, 16 x 32 MiB MiB/s",
         "conc16", X2, ONE, "throughput", 1.2),
    Goal("embedded --processes 2: server CPU per upload, processing included, <= 1.15x one process, small",
         "small", X2, ONE, "cpu", 1.15, at_most=True),
    Goal("embedded --processes 2: server CPU per upload, processing included, <= 1.15x one process, 16 x 32 MiB",
         "conc16", X2, ONE, "cpu", 1.15, at_most=True),
    Goal("Redis + PostgreSQL, one process >= 0.8x one embedded process, small uploads/s",
         "small", REDIS_PG, ONE, "throughput", 0.8),
    Goal("Redis + PostgreSQL, --processes 2 >= 1.2x one embedded process, small uploads/s",
         "small", REDIS_PG_X2, ONE, "throughput", 1.2),
    Goal("fs small: the best tusd-py configuration >= 2x @tus/server uploads/s",
         "small", BEST, NODE, "throughput", 2.0),
    Goal("PostgreSQL statements per small upload <= 10 (item 1), one process", "small", REDIS_PG, None, "statements",
         10, at_most=True),
    Goal("Redis commands sent per small upload <= 6 (item 1), one process", "small", REDIS_PG, None, "commands", 6,
         at_most=True),
    Goal("PostgreSQL statements per small upload <= 10 (item 1), --processes 2", "small", REDIS_PG_X2, None,
         "statements", 10, at_most=True),
    Goal("Redis commands sent per small upload <= 6 (item 1), --processes 2", "small", REDIS_PG_X2, None, "commands",
         6, at_most=True),
)  # fmt: skip


def _per_upload(m: Measurement, key: str) -> float | None:
    counted = m.coordination or {}
    uploads = (m.result or {}).get("uploads")
    return None if key not in counted or not uploads else float(counted[key]) / float(uploads)


def value(m: Measurement | None, measure: str) -> float | None:
    if m is None or not m.ok:
        return None
    if measure == "throughput":
        return m.metric("uploads_s" if m.workload == "small" else "mib_s")
    if measure == "cpu":  # processing included where it was measured (it may end after the upload phase)
        processed = m.processed_cpu_per_upload_ms()
        return processed if processed is not None else m.cpu_per_upload_ms()
    return _per_upload(m, "pg_statements" if measure == "statements" else "redis_sent")


def short(m: Measurement | None, config: str) -> str:
    """Why a target could not be judged, in a few words (the configuration table has the whole reason)."""
    why = status(m)
    return f"{config} refused" if why.startswith("refused:") else f"{config}: {why[:60]}"


def status(m: Measurement | None) -> str:
    """One of "ok", "not run", "refused: <reason>", or what failed."""
    if m is None:
        return "not run"
    if m.ok:
        return "ok"
    return m.error or str((m.result or {}).get("verified", "failed"))


def _best(data: list[Measurement], run: int) -> Measurement | None:
    found = [(v, m) for c in CONFIGS if (v := value(m := find(data, "fs", "small", c, run), "throughput")) is not None]
    return max(found, key=lambda pair: pair[0])[1] if found else None


def judge(goal: Goal, data: list[Measurement], run: int) -> tuple[str, float | None]:
    """The figure shown for a run, and the number judged (a ratio, or the subject's own figure)."""
    mine = _best(data, run) if goal.subject == BEST else find(data, "fs", goal.workload, goal.subject, run)
    ours = value(mine, goal.measure)
    name = f"{mine.peer}: " if goal.subject == BEST and mine is not None else ""
    if ours is None:
        return f"not measured ({short(mine, goal.subject)})", None
    if goal.against is None:
        return f"{ours:.2f}", ours
    other = find(data, "fs", goal.workload, goal.against, run)
    theirs = value(other, goal.measure)
    if not theirs:
        return f"{name}{ours:.1f}; not measured ({short(other, goal.against)})", None
    return f"{name}{ours:.1f} / {theirs:.1f} = {ours / theirs:.2f}x", ours / theirs


def verdict(goal: Goal, judged: list[float | None]) -> str:
    known = [v for v in judged if v is not None]
    if not known:
        return "not measured"
    passed = sum(goal.passes(v) for v in known)
    if passed == len(judged):
        return "met"
    return "not met" if passed == 0 else f"met in {passed} of {len(judged)} runs"


def _fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _ratio(mine: float | None, theirs: float | None) -> str:
    return "-" if mine is None or not theirs else f"{mine / theirs:.2f}x"


def config_rows(data: list[Measurement], workload: str, runs: int) -> list[list[str]]:
    rows = []
    for run in range(1, runs + 1):
        one = value(find(data, "fs", workload, ONE, run), "throughput")
        node = value(find(data, "fs", workload, NODE, run), "throughput")
        for config in SERVERS:
            m = find(data, "fs", workload, config, run)
            if m is None:
                continue
            mine = value(m, "throughput")
            cpu = (m.coordination or {}).get("cpu_s", {})
            uploads = (m.result or {}).get("uploads") or 0
            engines = (cpu["redis-server"] + cpu["postgres"]) * 1000 / uploads if cpu and uploads else None
            processed = (m.coordination or {}).get("recordings_processed")
            rows.append([
                config, str(run), _fmt(mine), _ratio(mine, one), _ratio(mine, node),
                _fmt(m.cpu_per_upload_ms() if m.ok else None, 2),
                _fmt(m.processed_cpu_per_upload_ms() if m.ok else None, 2), _fmt(engines, 2),
                _fmt(_per_upload(m, "pg_statements")), _fmt(_per_upload(m, "redis_sent")),
                _fmt(_per_upload(m, "redis_scripted")),
                "-" if processed is None else f"{processed}/{uploads}", status(m),
            ])  # fmt: skip
    return rows


CONFIG_HEADER = [
    "configuration", "run", "{unit}", "vs 1 embedded", "vs @tus/server", "tusd-py CPU ms/upload",
    "with processing", "Redis+PG CPU ms/upload", "PG statements/upload", "Redis cmds sent/upload",
    "Redis cmds in scripts/upload", "processed", "status",
]  # fmt: skip


def detail(data: list[Measurement], runs: int) -> list[str]:
    """Where a small upload's statements and commands go, and where the CPU went, per redis+pg row."""
    lines: list[str] = []
    shown = False
    for run in range(1, runs + 1):
        for config in (REDIS_PG, REDIS_PG_X2):
            m = find(data, "fs", "small", config, run)
            counted = (m.coordination or {}) if m is not None else {}
            uploads = (m.result or {}).get("uploads") if m is not None else None
            if not counted or not uploads:
                continue
            split = ", ".join(f"{k} {v:.1f} s" for k, v in counted["cpu_s"].items())
            lines.append(
                f"{config} run {run}, CPU over the upload phase: tusd-py {m.server_cpu_s or 0:.1f} s, {split};"
                f" upload phase {m.result['seconds']:.1f} s, then {counted.get('processing_wait_s', 0):.1f} s"
                " until every recording was processed"
            )
            if counted.get("redis_log_overflowed"):
                lines.append(f"{config} run {run}: the Redis slow log overflowed, command counts are low")
            if shown:
                continue
            shown = True
            lines.append(
                f"{config} run {run}, per small upload (POST + PATCH, processed to completed):"
                f" Redis sent {counted_by_name(counted['redis_sent_by_name'], uploads)};"
                f" PostgreSQL statements, most frequent first:"
            )
            lines += [f"    {calls / uploads:6.2f}  {query}" for calls, query in counted["pg_top"]]
    return lines


def section(data: list[Measurement], runs: int, descriptions: dict[str, str], markdown: bool) -> str:
    if not any(m.peer in CONFIGS[1:] and m.backend == "fs" for m in data):
        return ""  # no configuration of issue 27 ran
    out = ["### Issue 27: tusd-py configurations" if markdown else "== Issue 27: tusd-py configurations", ""]
    table = markdown_table if markdown else text_table
    for workload in WORKLOADS:
        rows = config_rows(data, workload, runs)
        if not rows:
            continue
        unit = "uploads/s" if workload == "small" else "MiB/s"
        header = [h.format(unit=unit) for h in CONFIG_HEADER]
        title = f"filesystem / {workload}: {descriptions.get(workload, '')}, processing on"
        out += [title, "", table(rows, header), ""]
    rows = []
    for goal in GOALS:
        judged = [judge(goal, data, run) for run in range(1, runs + 1)]
        rows.append([verdict(goal, [v for _, v in judged]), goal.label, "; ".join(f for f, _ in judged)])
    out += ["Targets (issue 27 items 1 and 3)", "", table(rows, ["verdict", "target", "per run"]), ""]
    lines = detail(data, runs)
    if lines:
        out += ["```", *lines, "```"] if markdown else [f"   {line}" for line in lines]
    return "\n".join(out) + "\n"
