"""AuthError: a 401 with a plain-text reason and the RFC 6750 ``WWW-Authenticate`` value."""

from __future__ import annotations

import re

from tusd_py.model.errors import TusError

REALM = "tusd-py"

# RFC 6750 §3: error_description values "MUST NOT include characters outside the set
# %x20-21 / %x23-5B / %x5D-7E", i.e. printable ASCII without '"' and '\'.
_NOT_ALLOWED_IN_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def www_authenticate(error: str | None, description: str | None) -> str:
    """The challenge to send. RFC 6750 §3.1: "If the request lacks any authentication
    information [...] the resource server SHOULD NOT include an error code"."""
    value = f'Bearer realm="{REALM}"'
    if error is not None:
        value += f', error="{error}"'
        if description:
            clean = _NOT_ALLOWED_IN_DESCRIPTION.sub("?", description)[:200]
            value += f', error_description="{clean}"'
    return value


class AuthError(TusError):
    """Authentication failed. A :class:`TusError`, so the one error middleware can map it too."""

    def __init__(self, reason: str, *, error: str | None = "invalid_token") -> None:
        self.www_authenticate = www_authenticate(error, reason)
        self.error = error
        super().__init__(401, reason, {"WWW-Authenticate": self.www_authenticate, "Cache-Control": "no-store"})

    def __repr__(self) -> str:
        return f"AuthError({self.reason!r}, error={self.error!r})"


def missing_credentials(reason: str = "missing bearer token") -> AuthError:
    return AuthError(reason, error=None)
