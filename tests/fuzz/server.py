"""A real tusd-py app on a real loopback socket, served from its own event loop in a thread.

Hypothesis drives blocking raw sockets, so the server cannot share the test's event loop; a
thread with its own loop keeps the whole thing in-process (fast, no subprocess to reap) while
the bytes still cross a real TCP connection and aiohttp's real HTTP parser.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from tusd_py.config.values import Config
from tusd_py.server.app import make_app

_START_TIMEOUT = 20.0


@contextmanager
def serve(config: Config) -> Iterator[tuple[str, int]]:
    """Run ``make_app(config)`` on 127.0.0.1 (a free port); yields (host, port) while it runs."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    address: list[tuple[str, int]] = []
    failure: list[BaseException] = []

    async def main() -> None:
        runner = web.AppRunner(make_app(config), handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert isinstance(server, asyncio.base_events.Server)
            address.append(server.sockets[0].getsockname()[:2])
            ready.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported to the test thread below
            failure.append(exc)
        finally:
            ready.set()
            loop.close()

    thread = threading.Thread(target=run, name="fuzz-server", daemon=True)
    thread.start()
    if not ready.wait(_START_TIMEOUT) or not address:
        raise RuntimeError(f"the fuzz server did not start: {failure!r}")
    try:
        yield address[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(_START_TIMEOUT)
        assert not thread.is_alive(), "the fuzz server did not stop"
        if failure:
            raise failure[0]
