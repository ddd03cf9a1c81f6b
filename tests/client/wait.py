"""Raw-socket HTTP for fault injection: send part of a body, then stall, close or let the server die."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit


class PartialRequest:
    """A request whose body is sent piecemeal by the test."""

    def __init__(self, url: str, method: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
        head = f"{method} {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.sock.sendall(head.encode("latin-1"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response_status(self, timeout: float = 10) -> int:
        self.sock.settimeout(timeout)
        data = b""
        while b"\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed before a status line")
            data += chunk
        return int(data.split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
