"""Helpers shared by the interop tests: payloads, plain HTTP checks, and a fault-injecting TCP proxy.

Everything talks to 127.0.0.1 only. The HTTP helpers use http.client so that what they check does not
depend on any tus client library.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
HTTP_TIMEOUT = 30.0


def make_payload(directory: Path, size: int, seed: int = 1, name: str = "payload.bin") -> Path:
    """Writes `size` deterministic pseudo-random bytes (incompressible, reproducible per seed)."""
    path = directory / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""


def request(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> HttpResult:
    """One request on a fresh connection; the whole response body is read."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"only plain http URLs are supported here: {url}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=HTTP_TIMEOUT)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return HttpResult(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def head_upload(url: str, auth_headers: dict[str, str]) -> HttpResult:
    return request("HEAD", url, {**TUS_HEADERS, **auth_headers})


def stored_sha256(url: str, auth_headers: dict[str, str]) -> str:
    """GETs the upload's bytes back and hashes them."""
    result = request("GET", url, {**TUS_HEADERS, **auth_headers})
    assert result.status == 200, f"GET {url} -> {result.status}: {result.body[:300]!r}"
    return hashlib.sha256(result.body).hexdigest()


def assert_upload_complete(url: str, payload: Path, auth_headers: dict[str, str]) -> HttpResult:
    """The server holds exactly the payload's bytes and says the upload is complete."""
    size = payload.stat().st_size
    head = head_upload(url, auth_headers)
    assert head.status in (200, 204), f"HEAD {url} -> {head.status}"
    assert head.headers.get("upload-offset") == str(size), head.headers
    assert head.headers.get("upload-length") == str(size), head.headers
    assert stored_sha256(url, auth_headers) == sha256_file(payload)
    return head


def decode_metadata(header: str | None) -> dict[str, str | None]:
    """Parses an Upload-Metadata header into {key: utf-8 value or None for a key without value}."""
    result: dict[str, str | None] = {}
    if not header:
        return result
    for pair in header.split(","):
        pieces = pair.strip().split(" ")
        if not pieces[0]:
            continue
        result[pieces[0]] = base64.b64decode(pieces[1]).decode("utf-8") if len(pieces) > 1 else None
    return result


# ----------------------------------------------------------------------------------------------
# Fault injection


@dataclass
class CutRecord:
    """What the proxy forwarded of the request it cut."""

    request_head: bytes = b""
    body_bytes_forwarded: int = 0


@dataclass
class _ConnState:
    counting: bool = False
    forwarded: int = 0  # bytes of the marked request forwarded so far (head included)
    head: bytearray = field(default_factory=bytearray)
    head_len: int | None = None


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 that cuts the first request whose request line starts with `method`.

    It forwards the request head and `body_bytes` bytes of its body, then closes the server side
    gracefully (the server reads every forwarded byte, then sees the body end early, exactly like a
    client that vanished mid-body) and resets the client side (the client sees ECONNRESET, as after a
    network drop). Every other byte in both directions passes through untouched, keep-alive included.
    The Host header is forwarded as-is, so a server that builds Location from Host keeps the client
    on the proxy.
    """

    def __init__(self, target_url: str, *, method: str = "PATCH", body_bytes: int = 512 * 1024, cuts: int = 1) -> None:
        parts = urlsplit(target_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the proxy only forwards to loopback")
        self._target = (parts.hostname, parts.port or 80)
        self._marker = method.encode("ascii") + b" /"
        self._body_bytes = body_bytes
        self._cuts_left = cuts
        self.cut_records: list[CutRecord] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        return parts._replace(netloc=f"127.0.0.1:{self.port}").geturl()

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> CuttingProxy:
        self._thread = threading.Thread(target=self._run, name="cutting-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        # Keep-alive connections may still be open: drop them and let every handler finish.
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    # -- data path ------------------------------------------------------------------------------
    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._tasks.add(handler)
        self._writers.add(client_writer)
        try:
            try:
                server_reader, server_writer = await asyncio.open_connection(*self._target)
            except OSError:
                client_writer.transport.abort()
                return
            self._writers.add(server_writer)
            up = asyncio.create_task(self._client_to_server(client_reader, client_writer, server_writer))
            down = asyncio.create_task(self._pipe(server_reader, client_writer))
            try:
                await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
                # A finished direction ends the connection in both directions, like a dumb L4 proxy.
                await asyncio.wait({up, down}, timeout=1)
            finally:
                for task in (up, down):
                    task.cancel()
                await asyncio.gather(up, down, return_exceptions=True)
                server_writer.close()
                await asyncio.gather(server_writer.wait_closed(), return_exceptions=True)
                self._writers.discard(server_writer)
        finally:
            client_writer.close()
            await asyncio.gather(client_writer.wait_closed(), return_exceptions=True)
            self._writers.discard(client_writer)
            self._tasks.discard(handler)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def _client_to_server(
        self, reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, writer: asyncio.StreamWriter
    ) -> None:
        state = _ConnState()
        while data := await reader.read(65536):
            if not state.counting and self._cuts_left > 0:
                index = data.find(self._marker)
                if index >= 0:
                    self._cuts_left -= 1
                    state.counting = True
                    writer.write(data[:index])
                    data = data[index:]
            if not state.counting:
                writer.write(data)
                await writer.drain()
                continue
            if state.head_len is None:
                state.head.extend(data)
                end = state.head.find(b"\r\n\r\n")
                if end >= 0:
                    state.head_len = end + 4
            limit = None if state.head_len is None else state.head_len + self._body_bytes
            if limit is not None and state.forwarded + len(data) >= limit:
                writer.write(data[: limit - state.forwarded])
                await writer.drain()
                self.cut_records.append(
                    CutRecord(request_head=bytes(state.head[: state.head_len]), body_bytes_forwarded=self._body_bytes)
                )
                # Server side: orderly end of stream after the forwarded bytes. Client side: reset.
                if writer.can_write_eof():
                    writer.write_eof()
                client_writer.transport.abort()
                return
            writer.write(data)
            state.forwarded += len(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
