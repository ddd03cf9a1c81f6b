"""A blocking HTTP/1.1 client for the resumable-upload draft checks that sees interim responses.

http.client skips only ``100 Continue`` and would return a ``104`` as the final response, so this
reads the wire itself: status lines and headers, interim responses kept, then one final response
framed by Content-Length (every response the checks provoke has one, or none for HEAD / 204).
Standard library only, like the rest of the suite.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

MAX_LINE = 16 * 1024
MAX_HEADERS = 200


@dataclass
class WireResponse:
    status: int | None = None  # None: the final response never came (the client cut the request)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    interim: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def first_interim(self, status: int) -> dict[str, str] | None:
        return next((headers for code, headers in self.interim if code == status), None)


def send(
    base_url: str,
    method: str,
    url: str | None,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    cut_after: int | None = None,
    timeout: float = 30.0,
) -> WireResponse:
    """One request on a new connection. With ``cut_after``, only that many body bytes are sent and
    the connection is closed once the first interim response (or the final one) arrived."""
    target = urlsplit(urljoin(base_url, url) if url else base_url)
    if target.scheme != "http":
        raise ValueError("the draft checks speak plain HTTP/1.1 only")
    host = target.hostname or "127.0.0.1"
    port = target.port or 80
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {target.netloc}"]
    fields = dict(headers)
    if body and not any(name.lower() == "content-length" for name in fields):
        fields["Content-Length"] = str(len(body))
    lines += [f"{name}: {value}" for name, value in fields.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head + (body if cut_after is None else body[:cut_after]))
        reader = sock.makefile("rb")
        try:
            return _read(reader, head_request=method == "HEAD", stop_at_interim=cut_after is not None)
        finally:
            reader.close()


def _read(reader: BinaryIO, *, head_request: bool, stop_at_interim: bool) -> WireResponse:
    result = WireResponse()
    for _ in range(100):  # bounded: a handful of interim responses at most
        status_line = _line(reader)
        if not status_line:
            return result  # connection closed
        parts = status_line.split(" ", 2)
        status = int(parts[1])
        fields = _fields(reader)
        if 100 <= status < 200:
            result.interim.append((status, fields))
            if stop_at_interim:
                return result
            continue
        result.status, result.headers = status, fields
        length = int(fields.get("content-length", "0") or "0")
        if not head_request and status not in (204, 304) and length:
            result.body = reader.read(length)
        return result
    raise AssertionError("too many interim responses")


def _line(reader: BinaryIO) -> str:
    raw: bytes = reader.readline(MAX_LINE)
    return raw.decode("latin-1").rstrip("\r\n")


def _fields(reader: BinaryIO) -> dict[str, str]:
    fields: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = _line(reader)
        if not line:
            return fields
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    raise AssertionError("too many header fields")
