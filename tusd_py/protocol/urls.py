"""Absolute upload URLs, correct behind a reverse proxy.

tus clients store the Location they get and come back to it later, possibly from another
network, so it must be the URL the *client* used: scheme and host as seen by the client, and
the path prefix the proxy added. Forwarding headers are trusted only with ``behind_proxy``,
since anyone can send them; even then they are validated before being echoed into a URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_PREFIX = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?")
_FORWARDED_PAIR = re.compile(r'\s*([A-Za-z]+)\s*=\s*("[^"]*"|[^;,\s]*)\s*')


def parse_forwarded(header: str) -> dict[str, str]:
    """RFC 7239: the first (client-most) element of a Forwarded header, as lower-cased keys."""
    first = header.split(",", 1)[0]
    result: dict[str, str] = {}
    for part in first.split(";"):
        match = _FORWARDED_PAIR.fullmatch(part)
        if match:
            result[match.group(1).lower()] = match.group(2).strip('"')
    return result


def external_base(
    *,
    scheme: str,
    host: str | None,
    base_path: str,
    headers: Mapping[str, str],
    behind_proxy: bool,
) -> str:
    """The absolute URL of the upload collection (ends with '/')."""
    prefix = ""
    if behind_proxy:
        forwarded = parse_forwarded(headers.get("Forwarded", ""))
        proto = forwarded.get("proto") or _first(headers.get("X-Forwarded-Proto"))
        fwd_host = forwarded.get("host") or _first(headers.get("X-Forwarded-Host"))
        fwd_prefix = _first(headers.get("X-Forwarded-Prefix"))
        if proto and proto.lower() in ("http", "https"):
            scheme = proto.lower()
        if fwd_host and _HOST.fullmatch(fwd_host):
            host = fwd_host
        if fwd_prefix and _PREFIX.fullmatch(fwd_prefix):
            prefix = fwd_prefix.rstrip("/")
    if not host or not _HOST.fullmatch(host):
        host = "localhost"
    return f"{scheme}://{host}{prefix}{base_path}"


def _first(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",", 1)[0].strip() or None


def safe_url(url: str) -> str:
    """The URL without userinfo, query or fragment, which may hold credentials (for logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
