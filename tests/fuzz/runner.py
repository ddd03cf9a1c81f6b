"""Carries out one fuzz :class:`~tests.fuzz.strategies.Plan` and checks the wire contract.

The contract, for every request however malformed: a complete response with a status below
500; then either the server closes cleanly, or the well-formed sentinel request sent next on
the same connection gets exactly its own response, with no bytes left over.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import time
from dataclasses import dataclass

import jwt
from hypothesis import note

from tests.fuzz import strategies as s
from tests.fuzz.wire import Conversation, Desync, Reply

SECRET = "f" * 48 + "-fuzz-test-secret"
OWNER, OTHER = "fuzz-owner", "fuzz-other"
SETUP_LENGTH = 10
_sentinels = itertools.count()


def token(user: str, ttl: int = 3600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now - 60, "exp": now + ttl}, SECRET, algorithm="HS256")


@dataclass(frozen=True)
class Server:
    address: tuple[str, int]
    auth: bool

    @property
    def host(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"


@dataclass(frozen=True)
class Upload:
    id: str
    offset: int


def request_bytes(
    server: Server, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"", framing: str = "exact"
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {server.host}", *(f"{k}: {v}" for k, v in headers)]
    if framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        pieces = [body[i : i + 16384] for i in range(0, len(body), 16384)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        declared = {"exact": len(body), "short": len(body) + 7, "long": len(body) // 2}[framing]
        if declared or method in ("POST", "PATCH", "PUT"):
            lines.append(f"Content-Length: {declared}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def call(server: Server, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> Reply:
    """A well-formed request on a connection of its own (setup, not under test)."""
    with Conversation(server.address) as conv:
        conv.send(request_bytes(server, method, target, [*headers, ("Connection", "close")], body), method)
        reply = conv.read_reply()
    assert reply is not None, f"setup {method} {target}: no response"
    return reply


# A finished upload whose metadata would inject headers if copied into a response unchecked.
EVIL_METADATA = ",".join(
    f"{key} {base64.b64encode(value).decode()}"
    for key, value in (("filename", b'a"\r\nX-Evil: 1\r\n.wav'), ("filetype", b"audio/wav\r\nX-Evil: 1"))
)


def create(server: Server, setup: str) -> Upload | None:
    """A fresh upload in the state ``setup`` names, owned by OWNER (None for "none")."""
    if setup == "none":
        return None
    tus = [("Tus-Resumable", "1.0.0"), *_owner()]
    length = [("Upload-Defer-Length", "1")] if setup == "deferred" else [("Upload-Length", str(SETUP_LENGTH))]
    extra = {"partial_concat": [("Upload-Concat", "partial")], "evil_meta": [("Upload-Metadata", EVIL_METADATA)]}
    made = call(server, "POST", "/files/", [*tus, *length, *extra.get(setup, [])])
    if setup == "evil_meta" and made.status == 400:
        return None  # refusing such metadata outright is fine too
    assert made.status == 201, (made.status, made.body)
    upload_id = made.headers["location"].rsplit("/", 1)[1]
    written = {"new": 0, "deferred": 0, "partial": 4}.get(setup, SETUP_LENGTH)
    if written:
        octet = [("Content-Type", "application/offset+octet-stream"), ("Upload-Offset", "0")]
        patched = call(server, "PATCH", f"/files/{upload_id}", [*tus, *octet], b"u" * written)
        assert patched.status == 204, (patched.status, patched.body)
    return Upload(upload_id, written)


def offset_now(server: Server, upload: Upload) -> int | None:
    """The upload's offset as its owner sees it; None if it is gone."""
    reply = call(server, "HEAD", f"/files/{upload.id}", [("Tus-Resumable", "1.0.0"), *_owner()])
    if reply.status == 404:
        return None
    assert reply.status == 200, reply.status
    return int(reply.headers["upload-offset"])


def _owner() -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token(OWNER)}")]


def effective_method(plan: s.Plan) -> str:
    """The method the server acts on: X-HTTP-Method-Override wins over the wire method."""
    override = dict(plan.headers).get("X-HTTP-Method-Override")
    return plan.method if override is None else override.strip().upper()


def check_auth(server: Server, plan: s.Plan, upload: Upload | None, first: Reply | None) -> None:
    """With auth on, a request without the owner's token neither succeeds nor changes the upload.

    Exempt: /healthz and the OpenAPI document, CORS preflights, and OPTIONS (spec: no auth needed
    to discover the server's capabilities).
    """
    if not server.auth:
        return
    credential = dict(plan.headers).get("Authorization")
    path = plan.target.split("?", 1)[0]
    preflight = plan.method == "OPTIONS" and {"Origin", "Access-Control-Request-Method"} <= dict(plan.headers).keys()
    exempt = path in ("/healthz", "/api/openapi.json") or preflight or effective_method(plan) == "OPTIONS"
    if first is not None and credential not in (s.TOKEN, s.OTHER_TOKEN) and not exempt:
        assert not 200 <= first.status < 300, f"{first.status} without a valid token: {first.body[:200]!r}"
    if upload is not None and credential != s.TOKEN:
        assert offset_now(server, upload) == upload.offset, "a request without the owner's token changed the upload"


def resolve(value: str, server: Server, upload: Upload | None, body: bytes) -> str:
    upload_id = upload.id if upload else "0" * 32
    facts = {
        s.OFFSET: str(upload.offset if upload else 0),
        s.SHA1: base64.b64encode(hashlib.sha1(body).digest()).decode(),
        s.TOKEN: f"Bearer {token(OWNER)}",
        s.OTHER_TOKEN: f"Bearer {token(OTHER)}",
        s.EXPIRED_TOKEN: f"Bearer {token(OWNER, ttl=-3600)}",
    }
    for marker in (s.TOKEN, s.OTHER_TOKEN, s.EXPIRED_TOKEN, s.OFFSET, s.SHA1):
        value = value.replace(marker, facts[marker])
    return value.replace(s.ID, upload_id)


def run(server: Server, plan: s.Plan) -> None:
    note(repr(plan))  # hypothesis' own rendering of a builds() value can come out empty
    upload = create(server, plan.setup)
    target = resolve(plan.target, server, upload, plan.body)
    headers = [(name, resolve(value, server, upload, plan.body)) for name, value in plan.headers]
    raw = request_bytes(server, plan.method, target, headers, plan.body, plan.framing)
    with Conversation(server.address) as conv:
        first = _exchange(conv, server, plan, raw)
    check_auth(server, plan, upload, first)


def _exchange(conv: Conversation, server: Server, plan: s.Plan, raw: bytes) -> Reply | None:
    conv.send(raw, plan.method)
    if plan.framing == "short":
        conv.half_close()  # the body never completes: any response, or a clean close, is right
        # aiohttp takes the half-close for a hang-up and may cut a response it had begun.
        with contextlib.suppress(Desync):
            reply = conv.read_reply()
            if reply is not None:
                _check_reply(reply, plan)
            return reply
        return None
    first = conv.read_reply()
    assert first is not None, "the server closed the connection without a response"
    _check_reply(first, plan)
    if plan.framing == "long":
        conv.drain()  # what follows a lying Content-Length is the client's fault; no desync check
        return first
    if conv.can_continue:
        sentinel_id = f"sentinel-{next(_sentinels)}"
        sentinel = request_bytes(server, "GET", "/healthz", [("X-Request-ID", sentinel_id)])
        if conv.send(sentinel, "GET"):
            second = conv.read_reply()
            if second is not None or not conv.closed:
                _check_sentinel(second, sentinel_id, first)
    leftover = conv.drain()
    if leftover:
        raise Desync(f"{len(leftover)} bytes after the last response: {leftover[:200]!r}; first was {first}")
    return first


def _check_reply(reply: Reply, plan: s.Plan) -> None:
    assert reply.status < 500, f"{reply.status}: {reply.body[:300]!r}"


def _check_sentinel(reply: Reply | None, sentinel_id: str, first: Reply) -> None:
    assert reply is not None, f"no response to the sentinel after {first.status} {first.headers}"
    got = (reply.status, reply.headers.get("x-request-id"), reply.body)
    if got != (200, sentinel_id, b"ok\n"):
        raise Desync(f"the sentinel got {got!r} after a {first.status} with {len(first.body)} body bytes")
