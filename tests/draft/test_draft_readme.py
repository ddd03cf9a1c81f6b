"""The docs' account of the draft's interop versions agrees with the version table (the README names
the range; docs/ietf-draft.md has the details and which Apple systems send which version)."""

from __future__ import annotations

import re
from pathlib import Path

from tusd_py.protocol.draft_versions import LATEST, VERSIONS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DRAFT_DOC = (ROOT / "docs" / "ietf-draft.md").read_text()


def test_the_served_range_is_the_tables() -> None:
    assert sorted(VERSIONS) == list(range(min(VERSIONS), LATEST + 1))
    assert README.count(f"interop versions {min(VERSIONS)} to {LATEST})") == 1
    assert DRAFT_DOC.count(f"version from {min(VERSIONS)} to {LATEST}, chosen per request") == 1
    assert f"so {LATEST} is the newest served" in DRAFT_DOC


def test_the_table_of_apple_systems_names_each_served_version_once() -> None:
    start = DRAFT_DOC.index("| system | version | source |")
    rows = DRAFT_DOC[start:].split("\n\n", 1)[0].splitlines()[2:]
    named: list[int] = []
    for row in rows:
        versions = row.split("|")[2]
        named += [int(n) for n in re.findall(r"(?<![-\d])\d+(?![\d.])", versions.split("(")[0])]
    assert sorted(named) == sorted(VERSIONS) == sorted(set(named))
