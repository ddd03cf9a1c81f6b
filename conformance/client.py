"""A deliberately small HTTP client over http.client: it sends exactly the headers a check gives.

(Higher-level clients add Content-Type or normalise headers, which would hide the very mistakes
a conformance check must provoke.)
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Client:
    base_url: str  # the upload collection, e.g. http://127.0.0.1:1080/files/
    extra_headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0

    def request(
        self,
        method: str,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        *,
        tus: bool = True,
    ) -> Response:
        target = urlsplit(urljoin(self.base_url, url) if url else self.base_url)
        conn_cls = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(target.hostname or "127.0.0.1", target.port, timeout=self.timeout)
        all_headers = {**(TUS if tus else {}), **self.extra_headers, **(headers or {})}
        path = target.path + (f"?{target.query}" if target.query else "")
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in all_headers.items():
                conn.putheader(name, value)
            if body is not None and "Content-Length" not in all_headers:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def create(self, length: int | None = 10, headers: dict[str, str] | None = None, body: bytes | None = None) -> str:
        """POST a new upload and return its absolute URL (raises if creation fails)."""
        h = dict(headers or {})
        if length is not None:
            h.setdefault("Upload-Length", str(length))
        if body is not None:
            h.update(OCTET)
        resp = self.request("POST", headers=h, body=body if body is not None else b"")
        if resp.status != 201 or not resp.header("Location"):
            raise AssertionError(f"creation failed: {resp.status} {resp.body[:200]!r}")
        return urljoin(self.base_url, resp.header("Location") or "")

    def patch(self, url: str, offset: int, data: bytes, headers: dict[str, str] | None = None) -> Response:
        return self.request("PATCH", url, {**OCTET, "Upload-Offset": str(offset), **(headers or {})}, data)

    def head(self, url: str) -> Response:
        return self.request("HEAD", url)

    def options(self) -> Response:
        return self.request("OPTIONS", tus=False)
