"""Hand-read HTTP/1.1 over real sockets, and a test server configured as production serves."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer


class RawConnection:
    """One keep-alive HTTP/1.1 connection with a small receive buffer, read by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # before connect, to take effect
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024 * 1024)
        return cls(reader, writer)

    async def send(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Tus-Resumable: 1.0.0"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()

    async def head(self) -> tuple[int, dict[str, str]]:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        lines = raw.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 "), lines[0]
        headers = dict(line.split(": ", 1) for line in lines[1:] if line)
        return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in headers.items()}

    async def body(self, length: int) -> bytes:
        """Up to ``length`` bytes; fewer if the server closes the connection first."""
        data = bytearray()
        while len(data) < length:
            chunk = await asyncio.wait_for(self.reader.read(min(1024 * 1024, length - len(data))), 10)
            if not chunk:
                break
            data += chunk
        return bytes(data)

    async def at_eof(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 10) == b""

    def close(self) -> None:
        self.writer.close()


class ProductionServer(TestServer):
    """As ``web.run_app`` serves (tusd_py.server.cli): a client disconnect does not cancel the handler,
    which instead meets the broken connection on its next write. (TestServer cancels.)"""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


def port_of(client: TestClient) -> int:
    assert isinstance(client.server, TestServer) and client.server.port is not None
    return client.server.port


async def until(predicate: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")
