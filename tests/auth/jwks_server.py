"""A real JWKS issuer for tests: HTTPS on 127.0.0.1 with its own CA, keys that can rotate, an off switch."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.certs import self_signed


class JwksIssuer:
    def __init__(self, tmp_path: Path, keys: list[dict[str, Any]], cache_control: str | None = "max-age=3600") -> None:
        self.ca_file, self._key_file = self_signed(tmp_path, "issuer")
        self.keys = keys
        self.cache_control = cache_control
        self.fetches = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/.well-known/jwks.json"

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
        return web.Response(body=json.dumps({"keys": self.keys}), content_type="application/json", headers=headers)

    async def start(self, port: int = 0) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, self._key_file)
        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
