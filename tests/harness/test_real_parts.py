"""A missing real part fails under CI and is a named skip elsewhere; PostgreSQL of any version is found."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.postgres_server import find_pg_bin
from tests.real_parts import marks_for, part_missing


def test_a_missing_part_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"nginx is not installed.*CI=true"):
        part_missing("nginx is not installed")


def test_a_missing_part_is_a_named_skip_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="nginx is not installed"):
        part_missing("nginx is not installed")


def _server_binaries(root: Path, version: str) -> None:
    bin_dir = root / version / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        (bin_dir / name).write_text("#!/bin/sh\n")


def test_find_pg_bin_takes_the_newest_installed_major_version(tmp_path: Path) -> None:
    for version in ("15", "18", "9.6"):
        _server_binaries(tmp_path, version)
    (tmp_path / "19" / "bin").mkdir(parents=True)  # a client-only package: no server binaries
    assert find_pg_bin(tmp_path) == tmp_path / "18" / "bin"


def test_markers_follow_the_fixtures_and_parameters_that_start_real_parts() -> None:
    assert marks_for(["database_url", "tmp_path"], {}) == {"postgres"}
    assert marks_for(["cluster"], {}) == {"nginx", "postgres", "redis"}
    assert marks_for(["tus_url"], {"tus_topology": "three behind nginx", "tus_backend": "s3"}) == {
        "nginx", "postgres", "redis", "s3",
    }  # fmt: skip
    assert marks_for(["tus_url"], {"tus_topology": "one instance", "tus_backend": "filesystem"}) == set()
