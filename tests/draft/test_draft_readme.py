"""The README's account of the draft's interop versions agrees with the version table."""

from __future__ import annotations

import re
from pathlib import Path

from tusd_py.protocol.draft_versions import LATEST, VERSIONS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_served_range_is_the_tables() -> None:
    assert sorted(VERSIONS) == list(range(min(VERSIONS), LATEST + 1))
    assert README.count(f"every interop version from {min(VERSIONS)} to {LATEST},") == 1
    assert README.count(f"version from {min(VERSIONS)} to {LATEST}, chosen per request") == 1
    assert f"so {LATEST} is the newest served" in README


def test_the_table_of_apple_systems_names_each_served_version_once() -> None:
    start = README.index("| system | version | source |")
    rows = README[start:].split("\n\n", 1)[0].splitlines()[2:]
    named: list[int] = []
    for row in rows:
        versions = row.split("|")[2]
        named += [int(n) for n in re.findall(r"(?<![-\d])\d+(?![\d.])", versions.split("(")[0])]
    assert sorted(named) == sorted(VERSIONS) == sorted(set(named))
