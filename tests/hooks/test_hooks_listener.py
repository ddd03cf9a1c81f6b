from __future__ import annotations

import structlog

from tests.hooks.hook_support import upload
from tusd_py.hooks import HookDispatcher, HookEvent, HookListener, HookRegistry, HookType


async def test_lifecycle_events_become_post_hooks_with_the_request_id() -> None:
    got: list[HookEvent] = []

    async def record(ev: HookEvent) -> None:
        got.append(ev)

    registry = HookRegistry()
    registry.register(HookType.POST_FINISH, record)
    registry.register(HookType.POST_RECEIVE, record)
    dispatcher = HookDispatcher(registry)
    listener = HookListener(dispatcher)
    with structlog.contextvars.bound_contextvars(request_id="r-42"):
        listener.on_progress(upload(offset=50))
        listener.on_progress(upload(offset=60))  # throttled: same upload within 1 s
        await listener.on_finished(upload(offset=100, sha256="ff"))
    await dispatcher.drain(1)
    assert [(ev.type, ev.upload.offset) for ev in got] == [("post-receive", 50), ("post-finish", 100)]
    assert {ev.request_id for ev in got} == {"r-42"}
    assert got[1].user_id == "alice" and got[1].upload.sha256 == "ff"
