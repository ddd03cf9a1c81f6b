"""HookDispatcher: pre-hook decisions and failure policy, fire-and-forget post hooks, drain."""

from __future__ import annotations

import asyncio
import json
from typing import Final

import pytest
from structlog.testing import capture_logs

from tests.hooks.hook_support import Answer, FakeSleep, MakeReceiver, event
from tusd_py.hooks import (
    HookChange,
    HookDispatcher,
    HookEvent,
    HookRegistry,
    HookRejection,
    HookType,
    PreCreateResult,
    ProgressThrottle,
    WebhookConfig,
)

PRE_CREATE: Final = HookType.PRE_CREATE  # Final keeps the Literal type the register() overloads need


def webhook(url: str, **fields: object) -> WebhookConfig:
    config: dict[str, object] = {"timeout": 0.5, "retries": 2, "backoff_base": 0.01, "secret": "s"}
    config.update(fields)
    return WebhookConfig(url=url, **config)  # type: ignore[arg-type]


async def test_pre_create_webhook_rejects_with_its_message(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(Answer(body=b'{"reject": {"status": 403, "message": "over quota"}}'))
    dispatcher = HookDispatcher(webhooks=[webhook(receiver.url)])
    result = await dispatcher.run_pre_create(event(PRE_CREATE))
    assert result == PreCreateResult(rejection=HookRejection(403, "over quota"))
    await dispatcher.drain(1)


async def test_pre_create_webhook_changes_id_and_metadata(make_receiver: MakeReceiver) -> None:
    reply = {"change": {"id": "tenant1_abc", "metadata": {"filename": "b.txt"}}}
    receiver = await make_receiver(Answer(body=json.dumps(reply).encode()))
    dispatcher = HookDispatcher(webhooks=[webhook(receiver.url)])
    result = await dispatcher.run_pre_create(event(PRE_CREATE))
    assert result.rejection is None
    assert result.change == HookChange(upload_id="tenant1_abc", metadata={"filename": b"b.txt"})
    await dispatcher.drain(1)


async def test_invalid_change_is_refused_fail_closed(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(Answer(body=b'{"change": {"id": "../../etc/passwd"}}'))
    dispatcher = HookDispatcher(webhooks=[webhook(receiver.url)])
    with capture_logs() as logs:
        result = await dispatcher.run_pre_create(event(PRE_CREATE))
    assert result == PreCreateResult(rejection=HookRejection(502, "pre-create hook gave an invalid answer"))
    assert any("upload id" in entry.get("reason", "") for entry in logs)
    await dispatcher.drain(1)


async def test_pre_hook_webhook_down_or_slow_fails_closed(make_receiver: MakeReceiver, closed_port_url: str) -> None:
    slow = await make_receiver(Answer(delay=2.0))
    failing = await make_receiver(Answer(500))
    for url in [closed_port_url, slow.url, failing.url]:
        dispatcher = HookDispatcher(webhooks=[webhook(url, timeout=0.2)])
        result = await dispatcher.run_pre_create(event(PRE_CREATE))
        assert result.rejection == HookRejection(503, "pre-create hook is unavailable")
        assert await dispatcher.run_pre_finish(event(HookType.PRE_FINISH)) == HookRejection(
            503, "pre-finish hook is unavailable"
        )
        await dispatcher.drain(1)
    assert len(failing.requests) == 2  # pre hooks are not retried: a client is waiting


async def test_pre_hook_webhook_down_can_fail_open(closed_port_url: str) -> None:
    dispatcher = HookDispatcher(webhooks=[webhook(closed_port_url, fail_closed=False)])
    assert await dispatcher.run_pre_create(event(PRE_CREATE)) == PreCreateResult()
    assert await dispatcher.run_pre_finish(event(HookType.PRE_FINISH)) is None
    await dispatcher.drain(1)


async def test_pre_finish_rejection_from_a_callable_and_a_webhook(make_receiver: MakeReceiver) -> None:
    registry = HookRegistry()
    seen: list[int] = []

    async def check(ev: HookEvent) -> HookRejection | None:
        seen.append(ev.upload.offset)
        return None if ev.upload.sha256 else HookRejection(422, "no digest")

    registry.register(HookType.PRE_FINISH, check)
    receiver = await make_receiver(Answer(body=b'{"reject": {"status": 409, "message": "virus found"}}'))
    dispatcher = HookDispatcher(registry, [webhook(receiver.url, hooks=[HookType.PRE_FINISH])])
    assert await dispatcher.run_pre_finish(event(HookType.PRE_FINISH, offset=100)) == HookRejection(422, "no digest")
    assert receiver.requests == []  # first rejection wins
    assert await dispatcher.run_pre_finish(event(HookType.PRE_FINISH, sha256="00")) == HookRejection(409, "virus found")
    assert seen == [100, 0]
    await dispatcher.drain(1)


async def test_pre_create_callables_chain_changes_and_see_earlier_ones() -> None:
    registry = HookRegistry()
    seen: list[str] = []

    async def rename(ev: HookEvent) -> PreCreateResult:
        return PreCreateResult(change=HookChange(upload_id=f"{ev.user_id}_{ev.upload.id}"))

    async def tag(ev: HookEvent) -> PreCreateResult:
        seen.append(ev.upload.id)
        return PreCreateResult(change=HookChange(metadata={"tag": b"x"}))

    registry.register(PRE_CREATE, rename)
    registry.register(PRE_CREATE, tag)
    result = await HookDispatcher(registry).run_pre_create(event(PRE_CREATE))
    assert result.change == HookChange(upload_id="alice_abc123", metadata={"tag": b"x"})
    assert seen == ["alice_abc123"]


async def test_raising_or_wrong_typed_callable_fails_closed_unless_configured() -> None:
    async def boom(_: HookEvent) -> PreCreateResult | None:
        raise RuntimeError("bug")

    async def wrong(_: HookEvent) -> PreCreateResult | None:
        return "yes"  # type: ignore[return-value]

    for fn in (boom, wrong):
        registry = HookRegistry()
        registry.register(PRE_CREATE, fn)
        result = await HookDispatcher(registry).run_pre_create(event(PRE_CREATE))
        assert result.rejection == HookRejection(500, "pre-create hook failed")
        relaxed = HookDispatcher(registry, callables_fail_closed=False)
        assert await relaxed.run_pre_create(event(PRE_CREATE)) == PreCreateResult()


async def test_slow_callable_times_out() -> None:
    async def slow(_: HookEvent) -> PreCreateResult | None:
        await asyncio.sleep(5)
        return None

    registry = HookRegistry()
    registry.register(PRE_CREATE, slow)
    result = await HookDispatcher(registry, callable_timeout=0.05).run_pre_create(event(PRE_CREATE))
    assert result.rejection == HookRejection(503, "pre-create hook timed out")


async def test_wrong_event_type_is_a_programming_error() -> None:
    dispatcher = HookDispatcher()
    with pytest.raises(ValueError):
        await dispatcher.run_pre_create(event(HookType.PRE_FINISH))
    with pytest.raises(ValueError):
        dispatcher.emit(PRE_CREATE, event(PRE_CREATE))
    with pytest.raises(ValueError):
        dispatcher.emit(HookType.POST_FINISH, event(HookType.POST_CREATE))


async def test_post_hooks_run_in_the_background_and_never_raise(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(Answer(500))
    registry = HookRegistry()
    got: list[str] = []

    async def failing(_: HookEvent) -> None:
        raise RuntimeError("receiver bug")

    async def recording(ev: HookEvent) -> None:
        got.append(ev.type)

    registry.register(HookType.POST_FINISH, failing)
    registry.register(HookType.POST_FINISH, recording)
    sleep = FakeSleep()
    dispatcher = HookDispatcher(registry, [webhook(receiver.url)], sleep=sleep)
    with capture_logs() as logs:
        dispatcher.emit(HookType.POST_FINISH, event(HookType.POST_FINISH, offset=100))  # returns at once
        assert dispatcher.pending == 3
        assert await dispatcher.drain(5) == 0
    assert got == ["post-finish"]
    assert len(receiver.requests) == 3  # 1 + 2 retries, then gave up
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    assert ("post hook failed", "error") in events
    assert ("webhook gave up", "error") in events


async def test_post_receive_is_throttled_with_the_final_event_always_sent(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver()
    now = [0.0]
    dispatcher = HookDispatcher(
        webhooks=[webhook(receiver.url, hooks=[HookType.POST_RECEIVE])],
        throttle=ProgressThrottle(1.0, clock=lambda: now[0]),
    )
    for step, offset in enumerate(range(10, 101, 10)):
        now[0] = step * 0.3  # ten progress reports within 2.7 s
        dispatcher.emit(HookType.POST_RECEIVE, event(HookType.POST_RECEIVE, offset=offset))
    dispatcher.emit(HookType.POST_CREATE, event(HookType.POST_CREATE))  # not enabled for this webhook
    await dispatcher.drain(5)
    offsets = sorted(json.loads(body)["upload"]["offset"] for _, body in receiver.requests)
    assert offsets == [10, 50, 90, 100]  # t=0, 1.2, 2.4 and the final one


async def test_drain_waits_for_running_hooks_then_cancels_stragglers() -> None:
    registry = HookRegistry()
    finished: list[str] = []

    async def quick(ev: HookEvent) -> None:
        await asyncio.sleep(0.01)
        finished.append(ev.upload.id)

    async def stuck(_: HookEvent) -> None:
        await asyncio.sleep(60)

    registry.register(HookType.POST_CREATE, quick)
    registry.register(HookType.POST_TERMINATE, stuck)
    dispatcher = HookDispatcher(registry)
    dispatcher.emit(HookType.POST_CREATE, event(HookType.POST_CREATE))
    dispatcher.emit(HookType.POST_TERMINATE, event(HookType.POST_TERMINATE))
    with capture_logs() as logs:
        assert await dispatcher.drain(0.2) == 1
    assert finished == ["abc123"]
    assert dispatcher.pending == 0
    assert any(entry["event"] == "hooks cancelled at shutdown" for entry in logs)
    with capture_logs() as logs:
        dispatcher.emit(HookType.POST_CREATE, event(HookType.POST_CREATE))
    assert dispatcher.pending == 0
    assert logs[0]["event"] == "hook event dropped: dispatcher is shut down"
