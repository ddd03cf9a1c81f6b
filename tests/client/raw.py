"""A raw HTTP/1.1 client (h11 over asyncio streams) that sees interim responses.

aiohttp's client swallows 1xx responses, so the draft's ``104 Upload Resumption Supported`` is
only visible to a client that parses the wire itself. One connection per exchange; bounded reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import h11

TIMEOUT = 30.0


@dataclass
class Exchange:
    interim: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    def interim_of(self, status: int) -> list[dict[str, str]]:
        return [headers for code, headers in self.interim if code == status]


def _headers(event: h11.InformationalResponse | h11.Response) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers}


async def exchange(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    send: int | None = None,
) -> Exchange:
    """One request. With ``send``, only that many body bytes go out, then, once the first interim
    response arrived (or the connection ended), the client closes: a connection cut mid-body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    fields = [("Host", f"127.0.0.1:{port}"), *headers.items()]
    if body and not any(name.lower() in ("content-length", "transfer-encoding") for name in headers):
        fields.append(("Content-Length", str(len(body))))
    result = Exchange()
    try:
        request = h11.Request(method=method, target=path, headers=fields)
        writer.write(conn.send(request) or b"")
        if send is None:
            if body:
                writer.write(conn.send(h11.Data(data=body)) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            await _read(conn, reader, result, stop_at_interim=False)
        else:
            writer.write(conn.send(h11.Data(data=body[:send])) or b"")
            await writer.drain()
            await _read(conn, reader, result, stop_at_interim=True)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return result


async def _read(conn: h11.Connection, reader: asyncio.StreamReader, result: Exchange, *, stop_at_interim: bool) -> None:
    for _ in range(100_000):  # bounded: far more events than any exchange here produces
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
            conn.receive_data(data)
            if not data and stop_at_interim:
                return
            continue
        if isinstance(event, h11.InformationalResponse):
            result.interim.append((event.status_code, _headers(event)))
            if stop_at_interim:
                return
        elif isinstance(event, h11.Response):
            result.status = event.status_code
            result.headers = _headers(event)
            if stop_at_interim:
                return
        elif isinstance(event, h11.Data):
            result.body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return
    raise AssertionError("too many events")


async def raw_http10(port: int, head: str, body: bytes) -> bytes:
    """Everything an HTTP/1.0 request gets back (h11 only speaks 1.1); the server closes after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body)
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
