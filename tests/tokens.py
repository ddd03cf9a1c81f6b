"""The one place tests mint JWTs: a shared HS256 secret, claims, tokens and Authorization headers."""

from __future__ import annotations

import time
from typing import Any

import jwt

# Long enough for HS512 (64 bytes), so every HS algorithm accepts it.
SECRET = "s" * 32 + "-test-secret-of-decent-length-for-hs512-too-0123456789"


def claims(**overrides: Any) -> dict[str, Any]:
    """alice's claims, valid for 5 minutes; an override of None drops that claim."""
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "iat": now, "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(user: str, *, ttl: float = 600, secret: str = SECRET, **extra: Any) -> str:
    now = int(time.time())
    return jwt.encode(claims(sub=user, iat=now, exp=now + int(ttl), **extra), secret, algorithm="HS256")


def bearer(user: str, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, **kw)}"}
