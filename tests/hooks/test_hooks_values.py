"""Pure parts: events, results and their validation, webhook reply parsing, signatures, throttle."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hooks.hook_support import event, upload
from tusd_py.hooks import (
    HookChange,
    HookRejection,
    HookType,
    InvalidHookResult,
    PreCreateResult,
    ProgressThrottle,
    SignatureError,
    sign,
    verify_signature,
)
from tusd_py.hooks.events import encode_event
from tusd_py.hooks.replies import parse_reply
from tusd_py.hooks.webhook import WebhookConfig, backoff_delay
from tusd_py.protocol.urls import safe_url


def test_event_json_carries_text_and_binary_metadata_apart() -> None:
    data = json.loads(encode_event(event(HookType.POST_CREATE)))
    assert data["type"] == "post-create"
    assert data["user_id"] == "alice" and data["request_id"] == "req-1"
    assert data["upload"]["metadata"] == {"filename": "a.txt", "empty": None}
    assert data["upload"]["metadata_binary"] == {"blob": base64.b64encode(b"\xff\x00").decode()}
    assert set(data) == {"type", "event_id", "timestamp", "upload", "user_id", "request_id", "headers", "process"}
    assert data["headers"] == {} and data["process"] is None
    assert set(data["upload"]) == {
        "id", "length", "offset", "metadata", "metadata_binary", "owner", "concat", "partials", "sha256", "storage",
    }  # fmt: skip


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.none() | st.binary(max_size=8), max_size=5))
def test_metadata_round_trips_through_the_event(metadata: dict[str, bytes | None]) -> None:
    ev = event(HookType.POST_FINISH, metadata=metadata)
    decoded = msgspec.json.decode(msgspec.json.encode(ev), type=type(ev))
    assert decoded.upload.metadata_bytes() == metadata


@pytest.mark.parametrize("bad_id", ["", "a" * 129, "abc\n", "../etc", "a b", "ü"])
def test_invalid_changed_id_is_refused(bad_id: str) -> None:
    with pytest.raises(InvalidHookResult, match="upload id"):
        HookChange(upload_id=bad_id)


def test_invalid_changed_metadata_is_refused() -> None:
    with pytest.raises(InvalidHookResult, match="key"):
        HookChange(metadata={"with space": b"x"})
    with pytest.raises(InvalidHookResult, match="bytes"):
        HookChange(metadata={"k": "text"})  # type: ignore[dict-item]
    with pytest.raises(InvalidHookResult, match="longer"):
        HookChange(metadata={"k": b"x" * 60_000})
    # A hook is held to the limits of a client's Upload-Metadata: its values become headers too.
    with pytest.raises(InvalidHookResult, match="changed metadata: Upload-Metadata filename contains control"):
        HookChange(metadata={"filename": b"a\r\nb.wav"})
    with pytest.raises(InvalidHookResult, match="more than 32 keys"):
        HookChange(metadata={f"k{i}": None for i in range(33)})


@pytest.mark.parametrize("status", [200, 204, 302, 399, 600, 0])
def test_rejection_status_must_be_4xx_or_5xx(status: int) -> None:
    with pytest.raises(InvalidHookResult, match="status"):
        HookRejection(status, "no")


def test_rejection_message_must_be_printable() -> None:
    with pytest.raises(InvalidHookResult, match="control"):
        HookRejection(403, "no\x00")
    assert HookRejection(403, "quota exceeded\nsee docs").status == 403


def test_pre_create_result_applies_a_change_to_a_copy() -> None:
    info = upload()
    changed = PreCreateResult(change=HookChange(upload_id="new-id", metadata={"k": b"v"})).apply(info)
    assert (changed.id, changed.metadata) == ("new-id", {"k": b"v"})
    assert info.id == "abc123"
    assert PreCreateResult().apply(info) is info


@pytest.mark.parametrize("body", [b"", b"  ", b"{}", b'{"reject": null, "change": null}'])
def test_empty_reply_accepts(body: bytes) -> None:
    assert parse_reply(HookType.PRE_CREATE, body) == PreCreateResult()


def test_reply_with_rejection_and_change() -> None:
    reply = parse_reply(HookType.PRE_CREATE, b'{"reject": {"status": 403, "message": "quota"}}')
    assert reply.rejection == HookRejection(403, "quota")
    reply = parse_reply(HookType.PRE_FINISH, b'{"reject": {"status": 422}}')
    assert reply.rejection == HookRejection(422, "rejected by pre-finish hook")
    blob = base64.b64encode(b"\xff").decode()
    body = json.dumps({"change": {"id": "x_1", "metadata": {"a": "b", "c": None}, "metadata_binary": {"d": blob}}})
    reply = parse_reply(HookType.PRE_CREATE, body.encode())
    assert reply.change == HookChange(upload_id="x_1", metadata={"a": b"b", "c": None, "d": b"\xff"})


@pytest.mark.parametrize(
    ("hook", "body", "message"),
    [
        (HookType.PRE_CREATE, b"not json", "not JSON"),
        (HookType.PRE_CREATE, b"[]", "schema"),
        (HookType.PRE_CREATE, b'{"rejct": {"status": 403}}', "schema"),  # typo must not mean "accept"
        (HookType.PRE_CREATE, b'{"reject": {"status": "403"}}', "schema"),
        (HookType.PRE_CREATE, b'{"reject": {"status": 200}}', "status"),
        (HookType.PRE_CREATE, b'{"change": {"id": "../x"}}', "upload id"),
        (HookType.PRE_CREATE, b'{"change": {"metadata_binary": {"a": "!!"}}}', "not base64"),
        (HookType.PRE_CREATE, b'{"change": {"metadata": {"a": "x"}, "metadata_binary": {"a": ""}}}', "both"),
        (HookType.PRE_FINISH, b'{"change": {"id": "x"}}', "cannot change"),
    ],
)
def test_invalid_replies_are_refused(hook: HookType, body: bytes, message: str) -> None:
    with pytest.raises(InvalidHookResult, match=message):
        parse_reply(hook, body)


def test_signature_round_trip_and_tampering() -> None:
    body = b'{"type":"post-finish"}'
    header = sign("k3y", body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    verify_signature("k3y", header, body, now=1_700_000_100)
    cases = [
        ("k3y", header, body + b" ", 1_700_000_100, "does not match"),
        ("other", header, body, 1_700_000_100, "does not match"),
        ("k3y", header, body, 1_700_000_400, "tolerance"),  # replayed later
        ("k3y", header, body, 1_699_999_000, "tolerance"),  # from the future
        ("k3y", header.replace("t=1700000000", "t=1700000050"), body, 1_700_000_100, "does not match"),
        ("k3y", None, body, 1_700_000_100, "missing"),
        ("k3y", "v1=abc", body, 1_700_000_100, "malformed"),
        ("k3y", "t=x,v1=abc", body, 1_700_000_100, "malformed"),
    ]
    for secret, hdr, data, now, message in cases:
        with pytest.raises(SignatureError, match=message):
            verify_signature(secret, hdr, data, now=now)


def test_signature_accepts_any_of_several_v1_values() -> None:
    body = b"{}"
    old = sign("old", body, 100).split(",")[1]
    verify_signature("new", f"{sign('new', body, 100)},{old}", body, now=100)
    verify_signature("old", f"{sign('new', body, 100)},{old}", body, now=100)


def test_progress_throttle_with_an_injected_clock() -> None:
    now = [0.0]
    throttle = ProgressThrottle(interval=1.0, clock=lambda: now[0], prune_at=2)
    assert throttle.should_emit("a", 10, 100)
    assert not throttle.should_emit("a", 20, 100)
    now[0] = 0.999
    assert not throttle.should_emit("a", 30, 100)
    assert throttle.should_emit("b", 5, 100)  # per upload
    assert throttle.should_emit("a", 100, 100)  # the final event always goes out...
    assert "a" not in throttle._last  # ...and forgets the upload
    now[0] = 1.0
    assert throttle.should_emit("a", 40, None)  # deferred length: no "final" yet
    now[0] = 5.0
    throttle.should_emit("c", 1, 100)
    throttle.should_emit("d", 1, 100)  # grows past prune_at: stale a and b go
    assert len(throttle) == 2
    throttle.forget("c")
    assert len(throttle) == 1


def test_backoff_is_exponential_jittered_and_capped() -> None:
    assert [backoff_delay(n, 0.5, 3.0, lambda: 0.0) for n in range(5)] == [0.25, 0.5, 1.0, 1.5, 1.5]
    assert [backoff_delay(n, 0.5, 3.0, lambda: 1.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_webhook_config_validation_and_redaction() -> None:
    for bad in [
        {"url": "ftp://x/hook"},
        {"url": "http:///nohost"},
        {"url": "http://h/", "timeout": 0},
        {"url": "http://h/", "retries": 11},
        {"url": "http://h/", "backoff_base": 0},
    ]:
        with pytest.raises(ValueError):
            WebhookConfig(**bad)  # type: ignore[arg-type]
    config = WebhookConfig(url="https://user:pw@h:8443/hook?token=t", secret="s3cr3t")
    assert "pw" not in repr(config) and "s3cr3t" not in repr(config) and "token" not in repr(config)
    assert safe_url(config.url) == "https://h:8443/hook"


def test_backends_say_where_an_uploads_bytes_are_without_io(tmp_path: Path) -> None:
    from storage_backends.filesystem import FileStore
    from storage_backends.s3 import S3Store
    from storage_backends.s3_config import S3Config

    assert FileStore(tmp_path).location("abc") == {"type": "filesystem", "path": os.path.abspath(tmp_path / "abc")}
    s3 = S3Store(S3Config(bucket="uploads", prefix="tus/"))
    assert s3.location("abc") == {"type": "s3", "bucket": "uploads", "key": "tus/abc"}


def test_forwarded_headers_are_the_allow_list_only_bounded_and_joined() -> None:
    from multidict import CIMultiDict

    from tusd_py.hooks.context import MAX_FORWARDED_VALUE, pick_headers

    headers = CIMultiDict([("X-Tenant", "acme"), ("Authorization", "Bearer x"), ("X-Tag", "a"), ("X-Tag", "b")])
    headers["X-Long"] = "v" * 5000
    picked = pick_headers(headers, ["x-tenant", "x-tag", "x-long", "x-absent"])
    assert picked == {"x-tenant": "acme", "x-tag": "a, b", "x-long": "v" * MAX_FORWARDED_VALUE}


def test_standard_webhooks_secrets_and_headers() -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    from tusd_py.hooks.standard_signing import signing_key, standard_headers

    key = b"k" * 32
    whsec = "whsec_" + base64.b64encode(key).decode()
    assert signing_key(whsec) == key
    assert signing_key("plain text secret") == b"plain text secret"  # the older form: its bytes
    with pytest.raises(ValueError, match="base64"):
        signing_key("whsec_not base64!")
    with pytest.raises(ValueError, match="base64"):
        WebhookConfig(url="http://127.0.0.1:1/hook", secret="whsec_%%%")  # refused at start-up
    body = b'{"type":"post-finish"}'
    headers = standard_headers(key, "evt-1", body, int(time.time()))
    assert headers["webhook-id"] == "evt-1" and headers["webhook-signature"].startswith("v1,")
    assert Webhook(whsec).verify(body, headers) == {"type": "post-finish"}
    with pytest.raises(WebhookVerificationError):
        Webhook(whsec).verify(body + b" ", headers)  # one byte changed
    old = standard_headers(key, "evt-1", body, int(time.time()) - 600)
    with pytest.raises(WebhookVerificationError):
        Webhook(whsec).verify(body, old)  # outside the library's 5-minute tolerance
