"""JWT auth configuration and the pure checks that refuse unsafe configurations.

The checks run before any key is loaded, so a server with a dangerous configuration refuses to
start instead of accepting forged tokens later:

* ``none`` is never accepted (RFC 8725 §3.1: "libraries MUST enable the caller to specify a
  supported set of algorithms and MUST NOT use any other algorithms").
* HMAC (HS*) and public-key algorithms are never mixed. If one verifier accepted both, a token
  signed with HS256 *using the public key as the HMAC secret* would verify: the classic key
  confusion attack (RFC 8725 §2.1, §3.1).
* HMAC secrets are at least as long as the hash output (RFC 7518 §3.2: "A key of the same size
  as the hash output (for instance, 256 bits for "HS256") or larger MUST be used").
"""

from __future__ import annotations

import msgspec

HMAC_ALGORITHMS: dict[str, int] = {"HS256": 32, "HS384": 48, "HS512": 64}  # name -> minimum secret bytes
PUBLIC_KEY_ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256", "EdDSA"})
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset(HMAC_ALGORITHMS) | PUBLIC_KEY_ALGORITHMS

# Clocks drift; more than a few minutes of leeway would stretch every token's lifetime.
MAX_LEEWAY_SECONDS = 300.0


class AuthConfigError(ValueError):
    """The auth configuration is unsafe or incomplete; the server must not start with it."""


class AuthConfig(msgspec.Struct, kw_only=True):
    enabled: bool = False
    algorithms: list[str] = msgspec.field(default_factory=lambda: ["HS256"])
    secret: str | None = None  # shared secret for HS*
    public_key_path: str | None = None  # PEM public key for RS256 / ES256 / EdDSA
    jwks_path: str | None = None  # local JWKS file; the token's ``kid`` picks the key
    jwks_url: str | None = None  # remote JWKS (https), cached and refreshed by RemoteJwks
    jwks_ca_file: str | None = None  # PEM CA bundle for jwks_url; None: the system's
    jwks_min_refresh: float = 30.0  # seconds between fetches caused by unknown kids
    issuer: str | None = None  # when set, ``iss`` must be present and equal
    audience: str | None = None  # when set, ``aud`` must be present and contain it
    user_claim: str = "sub"
    leeway_seconds: float = 30.0

    def __repr__(self) -> str:
        # Configs end up in logs and tracebacks; the shared secret must not.
        secret = "None" if self.secret is None else "'***'"
        return (
            f"AuthConfig(enabled={self.enabled}, algorithms={self.algorithms!r}, secret={secret}, "
            f"public_key_path={self.public_key_path!r}, jwks_path={self.jwks_path!r}, jwks_url={self.jwks_url!r}, "
            f"issuer={self.issuer!r}, audience={self.audience!r}, user_claim={self.user_claim!r}, "
            f"leeway_seconds={self.leeway_seconds})"
        )

    @property
    def uses_hmac(self) -> bool:
        return any(alg in HMAC_ALGORITHMS for alg in self.algorithms)


def check_config(config: AuthConfig) -> None:
    """Raise :class:`AuthConfigError` if ``config`` (enabled) is unsafe or incomplete. Pure."""
    if not config.enabled:
        return
    algorithms = config.algorithms
    if not algorithms:
        raise AuthConfigError("auth: at least one algorithm must be allowed")
    for alg in algorithms:
        if alg.lower() == "none":
            raise AuthConfigError("auth: algorithm 'none' is never allowed")
        if alg not in SUPPORTED_ALGORITHMS:
            raise AuthConfigError(f"auth: unsupported algorithm {alg!r}; choose from {sorted(SUPPORTED_ALGORITHMS)}")
    hmac_algs = [alg for alg in algorithms if alg in HMAC_ALGORITHMS]
    public_algs = [alg for alg in algorithms if alg in PUBLIC_KEY_ALGORITHMS]
    if hmac_algs and public_algs:
        raise AuthConfigError("auth: HMAC (HS*) and public-key algorithms cannot be allowed together (key confusion)")
    sources = [s for s in (config.public_key_path, config.jwks_path, config.jwks_url) if s is not None]
    has_public_key = bool(sources)
    if len(sources) > 1:
        raise AuthConfigError("auth: give one of public_key_path, jwks_path and jwks_url, not several")
    if config.jwks_url is not None and not config.jwks_url.startswith("https://"):
        raise AuthConfigError("auth: jwks_url must be https (keys fetched in the clear could be swapped)")
    if hmac_algs:
        if has_public_key:
            raise AuthConfigError("auth: HS* algorithms cannot be used with a public key or JWKS")
        if not config.secret:
            raise AuthConfigError("auth: HS* algorithms need a shared secret")
        secret_len = len(config.secret.encode())
        for alg in hmac_algs:
            if secret_len < HMAC_ALGORITHMS[alg]:
                raise AuthConfigError(f"auth: the {alg} secret must be at least {HMAC_ALGORITHMS[alg]} bytes")
    else:
        if config.secret is not None:
            raise AuthConfigError("auth: a shared secret is only used with HS* algorithms")
        if not has_public_key:
            raise AuthConfigError("auth: public-key algorithms need public_key_path, jwks_path or jwks_url")
    if not config.user_claim:
        raise AuthConfigError("auth: user_claim must not be empty")
    if not 0 <= config.leeway_seconds <= MAX_LEEWAY_SECONDS:
        raise AuthConfigError(f"auth: leeway_seconds must be between 0 and {MAX_LEEWAY_SECONDS:g}")
