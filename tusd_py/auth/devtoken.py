"""Development tokens for ``make run``: signed with the configured shared secret.

Only HMAC configurations can mint: with a public-key setup the server holds no private key, by
design, and tokens come from the identity provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt

from tusd_py.auth.config import HMAC_ALGORITHMS, AuthConfig, AuthConfigError, check_config


def mint_dev_token(
    config: AuthConfig,
    user_id: str,
    ttl: float = 3600.0,
    *,
    extra_claims: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """A token the verifier built from ``config`` accepts for ``ttl`` seconds."""
    check_config(config)
    algorithm = next((alg for alg in config.algorithms if alg in HMAC_ALGORITHMS), None)
    if algorithm is None or config.secret is None:
        raise AuthConfigError("auth: dev tokens need an HS* algorithm and a shared secret")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    now = int(clock())
    claims: dict[str, Any] = dict(extra_claims or {})
    claims.update({config.user_claim: user_id, "iat": now, "exp": now + int(ttl)})
    if config.issuer is not None:
        claims["iss"] = config.issuer
    if config.audience is not None:
        claims["aud"] = config.audience
    return jwt.encode(claims, config.secret.encode(), algorithm=algorithm)
