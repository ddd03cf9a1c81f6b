"""Runs the registered checks against a server and reports one line per check."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass

from conformance import checks_core, checks_creation, checks_draft, checks_extensions  # noqa: F401  (registers)
from conformance.client import Client
from conformance.registry import CHECKS, CheckFailed
from tusd_py.protocol.draft_versions import INTEROP_HEADER, VERSIONS


@dataclass
class Outcome:
    name: str
    status: str  # "pass", "fail" or "skip"
    detail: str = ""


def advertised_extensions(client: Client) -> set[str]:
    value = client.options().header("Tus-Extension") or ""
    found = {item.strip() for item in value.split(",") if item.strip()}
    # The resumable-upload draft is no tus extension: a server speaking a version echoes it.
    for number in VERSIONS:
        probe = client.request("OPTIONS", headers={INTEROP_HEADER: str(number)}, tus=False)
        if probe.header(INTEROP_HEADER) == str(number):
            found.update((checks_draft.DRAFT[0], checks_draft.version_tag(number)))
    return found


def run_checks(client: Client, report: Callable[[Outcome], None] = lambda _: None) -> list[Outcome]:
    extensions = advertised_extensions(client)
    outcomes = []
    for chk in CHECKS:
        missing = [name for name in chk.requires if name not in extensions]
        if missing:
            outcome = Outcome(chk.name, "skip", "server does not advertise " + ", ".join(missing))
        else:
            try:
                chk.run(client)
                outcome = Outcome(chk.name, "pass", chk.requirement)
            except (CheckFailed, AssertionError) as exc:
                outcome = Outcome(chk.name, "fail", str(exc))
            except Exception as exc:  # a crash in a check is a failure, reported, not fatal
                outcome = Outcome(chk.name, "fail", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=2)}")
        report(outcome)
        outcomes.append(outcome)
    return outcomes


def print_outcome(outcome: Outcome) -> None:
    print(f"{outcome.status.upper():4} {outcome.name}: {outcome.detail}", flush=True)


def summary(outcomes: list[Outcome]) -> str:
    passed = sum(o.status == "pass" for o in outcomes)
    failed = sum(o.status == "fail" for o in outcomes)
    skipped = sum(o.status == "skip" for o in outcomes)
    return f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
