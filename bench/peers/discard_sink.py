"""A discard sink: the cheapest HTTP/1.1 server that speaks enough tus for bench/client.py.

It exists to measure the client, not a server: bodies are counted and dropped, no file, no
framework. If the client's MiB/s against this sink is well above every server's, the client
is not what limits the numbers in the table. Raw asyncio protocol, keep-alive, Content-Length
bodies only (the client always sends one).

    python bench/peers/discard_sink.py --port P
"""

from __future__ import annotations

import argparse
import asyncio
import secrets


class SinkProtocol(asyncio.Protocol):
    offsets: dict[str, int] = {}

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.body_left = 0
        self.pending: tuple[str, str] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.body_left:
            taken = min(self.body_left, len(data))
            self.body_left -= taken
            data = data[taken:]
            if self.body_left == 0:
                self._respond()
            if not data:
                return
        self.buffer += data
        while not self.body_left:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            rest = self.buffer[end + 4 :]
            self.buffer = bytearray()
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            self.pending = (method, target)
            taken = min(length, len(rest))
            self.body_left = length - taken
            if method == "PATCH":
                upload_id = target.rsplit("/", 1)[-1]
                self.offsets[upload_id] = self.offsets.get(upload_id, 0) + length
            if self.body_left == 0:
                self._respond()
                self.buffer = bytearray(rest[taken:])
            else:
                return

    def _respond(self) -> None:
        assert self.pending is not None and self.transport is not None
        method, target = self.pending
        self.pending = None
        upload_id = target.rsplit("/", 1)[-1]
        if method == "POST":
            new_id = secrets.token_hex(16)
            self.offsets[new_id] = 0
            status, headers = "201 Created", f"Location: /files/{new_id}\r\n"
        elif method == "PATCH":
            status, headers = "204 No Content", f"Upload-Offset: {self.offsets.get(upload_id, 0)}\r\n"
        elif method == "HEAD":
            status, headers = "200 OK", f"Upload-Offset: {self.offsets.get(upload_id, 0)}\r\n"
        else:
            status, headers = "405 Method Not Allowed", ""
        self.transport.write(
            f"HTTP/1.1 {status}\r\nTus-Resumable: 1.0.0\r\n{headers}Content-Length: 0\r\n\r\n".encode("latin-1")
        )


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SinkProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
