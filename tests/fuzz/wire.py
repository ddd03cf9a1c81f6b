"""Raw-socket HTTP/1.1 exchanges framed by h11, which tells a complete response from a desync.

The request bytes go out as the test wrote them (h11 would refuse the malformed ones); h11 is
only told the method, because that decides the framing of the answer (a response to HEAD has no
body, whatever its Content-Length says).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import h11

TIMEOUT = 5.0
_CHUNK = 65536


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names; the last value of a repeated header
    body: bytes = b""

    @property
    def closes(self) -> bool:
        return "close" in self.headers.get("connection", "").lower()


@dataclass
class Exchange:
    """What came back on one connection, in order, and how it ended."""

    replies: list[Reply] = field(default_factory=list)
    closed: bool = False  # the server closed the connection (EOF or reset)
    leftover: bytes = b""  # bytes after the last complete response that frame no response


class Desync(AssertionError):
    """The bytes on the wire did not frame as the responses that were due."""


class Stalled(AssertionError):
    """No (complete) response within the timeout."""


class Conversation:
    """One keep-alive connection: send raw requests and read their responses in order."""

    def __init__(self, address: tuple[str, int], timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.h11 = h11.Connection(our_role=h11.CLIENT)
        self.closed = False

    def __enter__(self) -> Conversation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, raw: bytes, method: str) -> bool:
        """Send ``raw`` as a request with ``method``; False if the server had already hung up."""
        self._expect(method)
        try:
            self.sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True
            return False
        return True

    def half_close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.closed = True

    def read_reply(self) -> Reply | None:
        """The next complete response; None if the connection ended cleanly before one began."""
        reply: Reply | None = None
        body = bytearray()
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if self.closed and reply is None and not self._buffered():
                    return None  # h11 calls an EOF before any response a protocol error
                raise Desync(f"unframeable response bytes: {exc}; buffered {self._buffered()!r}") from exc
            if event is h11.NEED_DATA:
                if not self._fill():
                    self.h11.receive_data(b"")
                continue
            if isinstance(event, h11.InformationalResponse):
                continue  # 100 Continue
            if isinstance(event, h11.Response):
                reply = Reply(
                    event.status_code,
                    {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers},
                )
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert reply is not None
                reply.body = bytes(body)
                self._next_cycle()
                return reply
            elif isinstance(event, h11.ConnectionClosed):
                self.closed = True
                if reply is not None:
                    raise Desync(f"closed inside a response: {reply.status} with {len(body)} body bytes")
                return None

    def drain(self) -> bytes:
        """Half-close and read to EOF: the bytes the server sent after the last complete response."""
        self.half_close()
        rest = bytearray(self._buffered())
        while not self.closed:
            try:
                chunk = self.sock.recv(_CHUNK)
            except TimeoutError as exc:
                raise Stalled(f"no EOF within {self.sock.gettimeout()} s after half-close") from exc
            except ConnectionResetError:
                break
            if not chunk:
                break
            rest += chunk
        self.closed = True
        return bytes(rest)

    def _expect(self, method: str) -> None:
        if self.h11.our_state is not h11.IDLE:
            raise Desync(f"a request is due while h11 is in {self.h11.states}")
        self.h11.send(h11.Request(method=method, target="/", headers=[("Host", "fuzz")]))
        self.h11.send(h11.EndOfMessage())

    def _next_cycle(self) -> None:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(_CHUNK)
        except TimeoutError as exc:
            raise Stalled(f"no complete response within {self.sock.gettimeout()} s") from exc
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.h11.receive_data(chunk)
        return True

    def _buffered(self) -> bytes:
        data, _closed = self.h11.trailing_data
        return bytes(data)

    @property
    def can_continue(self) -> bool:
        """The server left the connection open for another request (no close sent or seen)."""
        return not self.closed and self.h11.our_state is h11.IDLE and self.h11.their_state is h11.IDLE
