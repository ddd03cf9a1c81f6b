"""Helpers for hook tests: a real webhook receiver on 127.0.0.1 with scripted answers, sample events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from conformance.live_server import free_port
from tusd_py.hooks import HookEvent, HookType, build_event
from tusd_py.model.upload import UploadInfo

# tusd's seven hooks as tusd names them (tusd-py adds post-process).
TUSD_HOOKS = (
    "pre-create",
    "post-create",
    "post-receive",
    "pre-finish",
    "post-finish",
    "pre-terminate",
    "post-terminate",
)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0


@dataclass
class Receiver:
    """Answers requests with ``script`` in order (the last answer repeats) and records them."""

    url: str = ""
    script: list[Answer] = field(default_factory=lambda: [Answer()])
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        self.arrived.set()
        answer = self.script[min(len(self.requests), len(self.script)) - 1]
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, body=answer.body)


MakeReceiver = Callable[..., Awaitable[Receiver]]


@pytest.fixture
def make_receiver(aiohttp_server: Any) -> MakeReceiver:
    async def make(*script: Answer) -> Receiver:
        receiver = Receiver(script=list(script) or [Answer()])
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        app.router.add_post("/redirect", _redirect)
        server = await aiohttp_server(app, host="127.0.0.1")
        receiver.url = str(server.make_url("/hook"))
        return receiver

    return make


async def _redirect(_: web.Request) -> web.Response:
    raise web.HTTPFound("/hook")


@pytest.fixture
def closed_port_url() -> str:
    # A port just found free and closed again: connecting gets "connection refused".
    return f"http://127.0.0.1:{free_port()}/hook"


def upload(**overrides: Any) -> UploadInfo:
    fields: dict[str, Any] = {
        "id": "abc123",
        "length": 100,
        "offset": 0,
        "metadata": {"filename": b"a.txt", "blob": b"\xff\x00", "empty": None},
        "owner": "alice",
    }
    fields.update(overrides)
    return UploadInfo(**fields)


def event(hook_type: HookType, **overrides: Any) -> HookEvent:
    return build_event(hook_type, upload(**overrides), user_id="alice", request_id="req-1")


class FakeSleep:
    """Records requested delays instead of sleeping, so retry tests take no time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@dataclass
class Delivery:
    webhook_id: str
    hook: str
    event: dict[str, Any]


class StandardReceiver:
    """A real webhook receiver on a fixed 127.0.0.1 port that can go down and come back.

    It verifies each request with the ``standardwebhooks`` library (as a receiver in production
    would) and records what it accepted; ``fail_with`` makes it answer that status instead.
    """

    def __init__(self, port: int, secret: str) -> None:
        from standardwebhooks.webhooks import Webhook

        self.port = port
        self.url = f"http://127.0.0.1:{port}/hook"
        self.verifier = Webhook(secret)
        self.deliveries: list[Delivery] = []
        self.fail_with: int | None = None
        self.delay = 0.0
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        event = self.verifier.verify(body, dict(request.headers))  # raises if forged or stale
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            return web.Response(status=self.fail_with)
        self.deliveries.append(Delivery(request.headers["webhook-id"], request.headers["Tusd-Py-Hook"], event))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def of(self, hook: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.hook == hook]

    async def wait_for(self, hook: str, count: int, within: float = 60.0) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len({d.webhook_id for d in self.of(hook)}) < count:  # bounded by the deadline
            assert loop.time() < deadline, f"{len(self.of(hook))} of {count} {hook} events arrived"
            await asyncio.sleep(0.05)
        return self.of(hook)
