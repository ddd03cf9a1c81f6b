"""TokenVerifier: an Authorization header in, a Principal (or an AuthError) out.

Keys are loaded and the configuration checked once, at construction. With a local key,
verifying a token does no I/O (:meth:`verify_authorization` is synchronous); with a remote JWKS the
gate awaits :meth:`authorize`, which may fetch the key set first (:mod:`tusd_py.auth.remote_jwks`).
"""

from __future__ import annotations

from typing import Any

import jwt
import msgspec

from tusd_py.auth.config import AuthConfig, check_config
from tusd_py.auth.errors import AuthError
from tusd_py.auth.header import parse_bearer
from tusd_py.auth.keys import KeyRing, load_keys
from tusd_py.auth.remote_jwks import RemoteJwks

# The user id becomes the upload owner and shows up in logs and hook events: keep it sane.
MAX_USER_ID_LENGTH = 256

# Reasons are ours, not pyjwt's messages: short, stable, and never echoing token contents.
# Order matters: subclasses before their bases.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token has expired"),
    (jwt.ImmatureSignatureError, "token is not valid yet"),
    (jwt.InvalidAudienceError, "token audience is not accepted"),
    (jwt.InvalidIssuerError, "token issuer is not accepted"),
    (jwt.InvalidAlgorithmError, "token algorithm is not allowed"),
    (jwt.InvalidSignatureError, "token signature is invalid"),
    (jwt.InvalidIssuedAtError, "token iat claim is invalid"),
    (jwt.DecodeError, "token cannot be decoded"),
)


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who made the request: the user id from the configured claim, and every verified claim."""

    user_id: str
    claims: dict[str, Any]


def user_id_from_claims(claims: dict[str, Any], claim: str) -> str:
    """The user id in ``claims[claim]``: a non-empty string or an integer. Pure."""
    value = claims.get(claim)
    # bool is an int subclass; "true" as a user id is a token-minting bug, not a user.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise AuthError(f"token has no usable {claim!r} claim")
    if len(value) > MAX_USER_ID_LENGTH or not value.isprintable():
        raise AuthError(f"token {claim!r} claim is too long or not printable")
    return value


class TokenVerifier:
    def __init__(self, config: AuthConfig) -> None:
        check_config(config)
        self.config = config
        self._keys: KeyRing | None = load_keys(config) if config.enabled else None
        self.remote: RemoteJwks | None = None
        if config.enabled and config.jwks_url is not None:
            self.remote = RemoteJwks(
                config.jwks_url,
                config.algorithms,
                ca_file=config.jwks_ca_file,
                min_refresh=config.jwks_min_refresh,
            )

    @property
    def enabled(self) -> bool:
        return self._keys is not None

    async def authorize(self, header_value: str | None) -> Principal:
        """:meth:`verify_authorization` for the gate: with a remote JWKS, the key set may be fetched."""
        if self.remote is None:
            return self.verify_authorization(header_value)
        token = parse_bearer(header_value)
        kid = _unverified_header(token).get("kid")
        found = await self.remote.key_for(kid)
        if found is None:
            if not self.remote.reachable:
                # Fail closed: no key we hold fits, and the issuer cannot tell us more right now.
                raise AuthError("token signing keys are unavailable: the issuer's JWKS cannot be fetched")
            raise AuthError("token key id (kid) is unknown")
        return self._decode(token, found)

    def verify_authorization(self, header_value: str | None) -> Principal:
        """Verify the ``Authorization`` header value; raise :class:`AuthError` on any failure."""
        if self._keys is None:
            raise RuntimeError("auth is disabled; check TokenVerifier.enabled first")
        token = parse_bearer(header_value)
        return self.verify_token(token)

    def verify_token(self, token: str) -> Principal:
        if self._keys is None:
            raise RuntimeError("auth is disabled; check TokenVerifier.enabled first")
        found = self._keys.key_for(_unverified_header(token).get("kid"))
        if found is None:
            raise AuthError("token key id (kid) is unknown")
        return self._decode(token, found)

    def _decode(self, token: str, found: tuple[Any, tuple[str, ...]]) -> Principal:
        key, algorithms = found
        config = self.config
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(algorithms),
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_seconds,
                options={
                    "require": ["exp"],
                    # pyjwt insists ``sub`` is a string; we accept integer user ids and check the
                    # configured claim ourselves (user_id_from_claims).
                    "verify_sub": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise AuthError(_reason(exc)) from None
        return Principal(user_id=user_id_from_claims(claims, config.user_claim), claims=claims)


def _unverified_header(token: str) -> dict[str, Any]:
    try:
        header: dict[str, Any] = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("token cannot be decoded") from None
    return header


def _reason(exc: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "token is invalid"
