"""JWT authentication: configuration, token verification, dev tokens (the gate in tusd_py.http.gate applies it)."""

from tusd_py.auth.config import AuthConfig, AuthConfigError, check_config
from tusd_py.auth.devtoken import mint_dev_token
from tusd_py.auth.errors import AuthError, www_authenticate
from tusd_py.auth.header import parse_bearer
from tusd_py.auth.verifier import Principal, TokenVerifier

__all__ = [
    "AuthConfig",
    "AuthConfigError",
    "AuthError",
    "Principal",
    "TokenVerifier",
    "check_config",
    "mint_dev_token",
    "parse_bearer",
    "www_authenticate",
]
