"""Raw-socket HTTP/1.1 for tests: what aiohttp's client hides or cannot do.

aiohttp swallows interim (1xx) responses, always sends a whole body and reads a whole response. The
tests here need to see a ``104``, send part of a body and stall or vanish, read a response slowly
through a small receive buffer, reuse one keep-alive connection across odd methods, and write bytes
no HTTP client would. Requests and responses are framed by h11 (a response to HEAD has no body,
whatever its Content-Length says); bytes h11 would refuse go out through :func:`raw_exchange`.

- :class:`Connection`: one asyncio connection, request by request (:func:`exchange` is one request
  on a fresh connection).
- :class:`PartialRequest`: a blocking socket for tests that drive a server subprocess: the head,
  then body bytes piecemeal as the test decides.
Reads are bounded by a timeout and loops by a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

TIMEOUT = 30.0
_READ = 1024 * 1024


@dataclass
class Exchange:
    """One response as it came: interim responses in order, then the final one (``status`` None if
    the connection ended first)."""

    interim: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    def interim_of(self, status: int) -> list[dict[str, str]]:
        return [headers for code, headers in self.interim if code == status]


def _fields(event: h11.InformationalResponse | h11.Response) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers}


class Connection:
    """One HTTP/1.1 connection on 127.0.0.1. ``request`` sends a request, or its head and the first
    ``send`` body bytes (then ``send_body`` may add more); ``response`` reads an answer, or
    ``head``/``body`` read one slowly. After a complete exchange the next request may follow."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        self.reader, self.writer, self.port = reader, writer, port
        self.h11 = h11.Connection(h11.CLIENT)
        self.closed = False  # the server ended the connection

    @classmethod
    async def open(cls, port: int, *, receive_buffer: int | None = None) -> Connection:
        """``receive_buffer`` shrinks the socket's receive buffer, so that a server writing a large
        body blocks once the test stops reading."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)  # before connect, to take effect
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=_READ)
        return cls(reader, writer, port)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        *,
        send: int | None = None,
    ) -> None:
        """Send a request (Host and, for a body, Content-Length are added unless given). With
        ``send``, only that many body bytes go out and the request stays open."""
        self._next_cycle()
        given = headers or {}
        fields = [("Host", f"127.0.0.1:{self.port}"), *given.items()]
        if body and not any(name.lower() in ("content-length", "transfer-encoding") for name in given):
            fields.append(("Content-Length", str(len(body))))
        self.writer.write(self.h11.send(h11.Request(method=method, target=path, headers=fields)) or b"")
        if send is None:
            if body:
                self.writer.write(self.h11.send(h11.Data(data=body)) or b"")
            self.writer.write(self.h11.send(h11.EndOfMessage()) or b"")
        elif send:
            self.writer.write(self.h11.send(h11.Data(data=body[:send])) or b"")
        await self.writer.drain()

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        """More body bytes of the open request; with ``end``, the request is complete after them."""
        if data:
            self.writer.write(self.h11.send(h11.Data(data=data)) or b"")
        if end:
            self.writer.write(self.h11.send(h11.EndOfMessage()) or b"")
        await self.writer.drain()

    async def response(self, *, stop_at_interim: bool = False) -> Exchange:
        """The answer to the request sent, body and all; with ``stop_at_interim``, only up to the first
        interim or final response. ``status`` is None if the connection ended before a final one."""
        result = Exchange()
        for _ in range(100_000):  # bounded: far more events than any exchange here produces
            event = await self._event()
            if isinstance(event, h11.InformationalResponse):
                result.interim.append((event.status_code, _fields(event)))
                if stop_at_interim:
                    return result
            elif isinstance(event, h11.Response):
                result.status, result.headers = event.status_code, _fields(event)
                if stop_at_interim:
                    return result
            elif isinstance(event, h11.Data):
                result.body += bytes(event.data)
            elif event is None or isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return result
        raise AssertionError("too many events")

    async def head(self) -> tuple[int, dict[str, str]]:
        """The status and headers of the next final response (interim ones are passed over)."""
        for _ in range(1000):
            event = await self._event()
            if isinstance(event, h11.Response):
                return event.status_code, _fields(event)
            if event is None or isinstance(event, h11.ConnectionClosed):
                raise AssertionError("the connection ended before a response")
        raise AssertionError("no response")

    async def body(self, length: int) -> bytes:
        """Up to ``length`` bytes of the response body; fewer if it ends or the connection closes.
        Reads no more from the socket than asked for, so the server's writes back up behind it."""
        data = bytearray()
        for _ in range(1_000_000):  # bounded: each turn reads bytes or ends
            if len(data) >= length:
                break
            event = await self._event(limit=length - len(data))
            if isinstance(event, h11.Data):
                data += event.data
            elif event is None or isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        return bytes(data)

    async def at_eof(self) -> bool:
        """Whether the server closed the connection (read with a timeout, so a wrong answer fails)."""
        return self.closed or await asyncio.wait_for(self.reader.read(1), TIMEOUT) == b""

    @property
    def reusable(self) -> bool:
        """Neither side said the connection ends after this exchange."""
        return h11.MUST_CLOSE not in (self.h11.our_state, self.h11.their_state) and not self.closed

    def abort(self) -> None:
        """Vanish: reset the connection with nothing more sent."""
        self.writer.transport.abort()

    def close(self) -> None:
        self.writer.close()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def _event(self, limit: int = 65536) -> h11.Event | None:
        """The next event, reading at most ``limit`` bytes when h11 needs more; None once the server
        closed the connection in the middle of a message (h11 calls that a protocol error)."""
        for _ in range(100_000):
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:
                self.closed = True
                return None
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self.reader.read(min(limit, _READ)), TIMEOUT)
            if not data:
                self.closed = True
            self.h11.receive_data(data)
        raise AssertionError("no event")

    def _next_cycle(self) -> None:
        """Finish the previous exchange (its end-of-message may still be unread) and start the next."""
        if self.h11.their_state is h11.SEND_BODY:
            with contextlib.suppress(h11.RemoteProtocolError):
                self.h11.next_event()
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()


async def exchange(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"", *, send: int | None = None
) -> Exchange:
    """One request on a fresh connection. With ``send``, only that many body bytes go out, then, once
    the first interim response arrived (or the connection ended), the client closes: a connection
    cut mid-body."""
    async with await Connection.open(port) as conn:
        await conn.request(method, path, headers, body, send=send)
        return await conn.response(stop_at_interim=send is not None)


async def raw_exchange(port: int, request: bytes) -> bytes:
    """Exactly ``request`` out (an HTTP/1.0 request, bytes h11 would refuse), then everything that
    comes back until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        received = b""
        for _ in range(10_000):
            data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
            if not data:
                break
            received += data
        return received
    finally:
        writer.close()


class PartialRequest:
    """A request on a blocking socket whose body the test sends piecemeal (or never): for tests that
    drive a server subprocess and cut, stall or kill in the middle."""

    def __init__(self, url: str, method: str, headers: dict[str, str], *, timeout: float = 10) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout)
        head = f"{method} {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.sock.sendall(head.encode("latin-1"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response_status(self, timeout: float = 10) -> int:
        self.sock.settimeout(timeout)
        data = b""
        for _ in range(10_000):
            if b"\r\n" in data:
                return int(data.split(b" ", 2)[1])
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed before a status line")
            data += chunk
        raise AssertionError("no status line")

    def close(self) -> None:
        self.sock.close()
