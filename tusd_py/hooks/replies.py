"""Decoding a webhook's reply body into a rejection and/or a change. Pure.

Unknown fields are refused, not ignored: a typo such as ``"rejct"`` must not silently turn a
rejection into an acceptance. See WEBHOOKS.md for the schema.
"""

from __future__ import annotations

import base64
import binascii

import msgspec

from tusd_py.hooks.events import HookType, Metadata
from tusd_py.hooks.results import HookChange, HookRejection, InvalidHookResult, PreCreateResult


class _Reject(msgspec.Struct, forbid_unknown_fields=True):
    status: int
    message: str = ""


class _Change(msgspec.Struct, forbid_unknown_fields=True):
    id: str | None = None
    metadata: dict[str, str | None] | None = None
    metadata_binary: dict[str, str] | None = None


class _Reply(msgspec.Struct, forbid_unknown_fields=True):
    reject: _Reject | None = None
    change: _Change | None = None


_decoder = msgspec.json.Decoder(_Reply)


def parse_reply(hook_type: HookType, body: bytes) -> PreCreateResult:
    """An empty body (or ``{}``) accepts. Raise :class:`InvalidHookResult` on anything invalid."""
    if not body.strip():
        return PreCreateResult()
    try:
        reply = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidHookResult(f"reply does not match the schema: {exc}") from None
    except msgspec.DecodeError:
        raise InvalidHookResult("reply is not JSON") from None
    rejection = None
    if reply.reject is not None:
        message = reply.reject.message or f"rejected by {hook_type} hook"
        rejection = HookRejection(reply.reject.status, message)
    change = None
    if reply.change is not None:
        if hook_type is not HookType.PRE_CREATE:
            raise InvalidHookResult(f"a {hook_type} hook cannot change the upload")
        change = HookChange(upload_id=reply.change.id, metadata=_metadata(reply.change))
    return PreCreateResult(rejection=rejection, change=change)


def _metadata(change: _Change) -> Metadata | None:
    if change.metadata is None and change.metadata_binary is None:
        return None
    result: Metadata = {k: None if v is None else v.encode() for k, v in (change.metadata or {}).items()}
    for key, value in (change.metadata_binary or {}).items():
        if key in result:
            raise InvalidHookResult(f"metadata key {key!r} is in both metadata and metadata_binary")
        try:
            result[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidHookResult(f"metadata_binary value of {key!r} is not base64") from None
    return result
