"""Whether the Recordings API is served while authentication is off: decided once, at start.

With auth off every request acts for one anonymous caller who owns every upload, so
``GET /api/recordings`` lists every client's uploads with their URLs, and ``DELETE
/api/recordings/{id}``, ``POST /api/sync`` and ``POST /api/cleanup`` act on all of them. That is
what a developer wants on their own machine (``make run``, the ``/demo`` page), and what nobody
wants on a network: operators run tus with auth off behind a gateway or a pre-create hook, which
guard uploads, not this API. So with auth off the API is served only when the server listens on a
loopback address and not behind a proxy (whose clients are anyone's), or when the operator asks for
it with ``--api-without-auth``; otherwise its routes answer 403 with the reason. The decision is
logged at start. The tus routes and the OpenAPI document are not affected; with auth on, the token
decides, as for every route.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tusd_py.config.values import Config

_ALLOW = "give --api-without-auth to serve it anyway, or turn authentication on (--jwt-secret, --jwks ...)"


@dataclass(frozen=True, slots=True)
class Exposure:
    served: bool
    reason: str  # for the start-up log line


def is_loopback(host: str) -> bool:
    """``host`` (the ``--host`` value) names only this machine: a loopback address or ``localhost``."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def decide(config: Config) -> Exposure:
    """Serve the Recordings API with this configuration, and why (pure: no I/O)."""
    if config.auth_enabled:
        return Exposure(True, "authentication is on: each caller sees only their own uploads")
    if config.api_without_auth:
        return Exposure(True, "authentication is off and --api-without-auth is given: every caller sees every upload")
    if config.behind_proxy:
        return Exposure(False, f"authentication is off and requests come through a proxy (--behind-proxy); {_ALLOW}")
    if is_loopback(config.host):
        return Exposure(True, f"authentication is off and the server listens on loopback only ({config.host})")
    beyond = f"authentication is off and the server listens on {config.host}, beyond this machine"
    return Exposure(False, f"{beyond}; {_ALLOW}")


#: The text of the 403: the reason without the server's address, which the start-up log has.
REFUSED = (
    "the Recordings API is not served while authentication is off on a server reachable from other machines; "
    "the operator can turn authentication on or allow it with --api-without-auth"
)
