from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from tusd_py.config import Config

SECRET = "x" * 48 + "-server-auth-test-secret"


def token(user: str, *, ttl: float = 600, secret: str = SECRET, **claims: object) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + int(ttl), **claims}, secret, algorithm="HS256")


def bearer(user: str, **kw: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, **kw)}"}  # type: ignore[arg-type]


@pytest.fixture
def auth_config(tmp_path: Path) -> Config:
    return Config(
        storage_dir=str(tmp_path / "data"),
        jwt_secret=SECRET,
        quota_bytes=1000,
        quota_unfinished=3,
        max_size=10_000,
    )
