"""JWT authentication: configuration, token verification, dev tokens, aiohttp middleware."""

from tusd_py.auth.config import AuthConfig, AuthConfigError, check_config
from tusd_py.auth.devtoken import mint_dev_token
from tusd_py.auth.errors import AuthError, www_authenticate
from tusd_py.auth.header import parse_bearer
from tusd_py.auth.middleware import PRINCIPAL, auth_middleware
from tusd_py.auth.verifier import Principal, TokenVerifier

__all__ = [
    "PRINCIPAL",
    "AuthConfig",
    "AuthConfigError",
    "AuthError",
    "Principal",
    "TokenVerifier",
    "auth_middleware",
    "check_config",
    "mint_dev_token",
    "parse_bearer",
    "www_authenticate",
]
