from __future__ import annotations

from pathlib import Path

import pytest

from tests.tokens import SECRET
from tusd_py.config.values import Config


@pytest.fixture
def auth_config(tmp_path: Path) -> Config:
    return Config(
        storage_dir=str(tmp_path / "data"),
        jwt_secret=SECRET,
        quota_bytes=1000,
        quota_unfinished=3,
        max_size=10_000,
    )
