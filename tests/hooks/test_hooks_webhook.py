"""Webhook deliveries against a real receiver on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from tests.hooks.hook_support import Answer, FakeSleep, MakeReceiver, event
from tusd_py.hooks import SIGNATURE_HEADER, HookType, SignatureError, verify_signature
from tusd_py.hooks.webhook import WebhookClient, WebhookConfig, WebhookFailed


def client(url: str, sleep: FakeSleep | None = None, **config: object) -> WebhookClient:
    fields: dict[str, object] = {"secret": "hook-secret", "timeout": 0.5, "retries": 3, "backoff_base": 0.1}
    fields.update(config)
    cfg = WebhookConfig(url=url, **fields)  # type: ignore[arg-type]
    return WebhookClient(cfg, sleep=sleep or FakeSleep(), rand=lambda: 0.5)


async def test_event_is_posted_signed_and_verifiable(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver()
    hook = client(receiver.url)
    ev = event(HookType.POST_FINISH, offset=100, sha256="ab" * 32)
    assert await hook.deliver(ev) == 1
    await hook.close()
    headers, body = receiver.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["Tusd-Py-Hook"] == "post-finish"
    verify_signature("hook-secret", headers[SIGNATURE_HEADER], body)
    data = json.loads(body)
    assert data["event_id"] == ev.event_id and data["upload"]["sha256"] == "ab" * 32
    with pytest.raises(SignatureError):
        verify_signature("hook-secret", headers[SIGNATURE_HEADER], body.replace(b"alice", b"mallo"))


async def test_500_then_200_is_retried_until_it_succeeds(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(Answer(500), Answer(503), Answer(200))
    sleep = FakeSleep()
    hook = client(receiver.url, sleep)
    assert await hook.deliver(event(HookType.POST_CREATE)) == 3
    await hook.close()
    assert sleep.delays == pytest.approx([0.075, 0.15])  # equal jitter at rand=0.5
    bodies = {body for _, body in receiver.requests}
    assert len(bodies) == 1  # every retry sends the same event (same event_id)


async def test_always_failing_gives_up_after_the_retries(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(Answer(502))
    sleep = FakeSleep()
    hook = client(receiver.url, sleep)
    with pytest.raises(WebhookFailed, match="answered 502"):
        await hook.deliver(event(HookType.POST_CREATE))
    await hook.close()
    assert len(receiver.requests) == 4  # 1 + retries
    assert len(sleep.delays) == 3


async def test_client_errors_are_not_retried_but_429_is(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(Answer(404))
    hook = client(receiver.url)
    with pytest.raises(WebhookFailed, match="404") as info:
        await hook.deliver(event(HookType.POST_CREATE))
    await hook.close()
    assert not info.value.unavailable
    assert len(receiver.requests) == 1
    receiver = await make_receiver(Answer(429), Answer(200))
    hook = client(receiver.url)
    assert await hook.deliver(event(HookType.POST_CREATE)) == 2
    await hook.close()


async def test_target_down(closed_port_url: str) -> None:
    sleep = FakeSleep()
    hook = client(closed_port_url, sleep, retries=1)
    with pytest.raises(WebhookFailed) as info:
        await hook.deliver(event(HookType.POST_CREATE))
    await hook.close()
    assert info.value.unavailable and len(sleep.delays) == 1


async def test_slow_target_times_out(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(Answer(delay=2.0))
    hook = client(receiver.url, timeout=0.2)
    with pytest.raises(WebhookFailed, match="timed out") as info:
        await hook.call(event(HookType.PRE_CREATE))
    await hook.close()
    assert info.value.unavailable


async def test_redirects_are_not_followed(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver()
    hook = client(receiver.url.replace("/hook", "/redirect"))
    with pytest.raises(WebhookFailed, match="302"):
        await hook.call(event(HookType.PRE_CREATE))
    await hook.close()
    assert receiver.requests == []


async def test_oversized_reply_is_refused(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver(Answer(body=b" " * 70_000))
    hook = client(receiver.url)
    with pytest.raises(WebhookFailed, match="longer"):
        await hook.call(event(HookType.PRE_CREATE))
    await hook.close()


async def test_closed_client_refuses(make_receiver: MakeReceiver) -> None:
    receiver = await make_receiver()
    hook = client(receiver.url)
    await hook.close()
    with pytest.raises(WebhookFailed, match="closed"):
        await hook.deliver(event(HookType.POST_CREATE))
    assert receiver.requests == []
