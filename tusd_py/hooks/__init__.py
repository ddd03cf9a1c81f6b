"""Hooks, like tusd's: pre-create, post-create, post-receive, pre-finish, post-finish, post-terminate.

Two kinds of targets: Python callables (:class:`HookRegistry`) for code embedding the server, and
HTTP webhooks (:class:`WebhookConfig`). :class:`HookDispatcher` runs both. The webhook wire
format and signature scheme are described in ``WEBHOOKS.md`` next to this file.
"""

from tusd_py.hooks.dispatcher import HookDispatcher
from tusd_py.hooks.events import HookEvent, HookType, UploadSnapshot, build_event
from tusd_py.hooks.listener import HookListener
from tusd_py.hooks.registry import HookRegistry
from tusd_py.hooks.results import HookChange, HookRejection, InvalidHookResult, PreCreateResult
from tusd_py.hooks.signing import SIGNATURE_HEADER, SignatureError, sign, verify_signature
from tusd_py.hooks.throttle import ProgressThrottle
from tusd_py.hooks.webhook import WebhookConfig

__all__ = [
    "SIGNATURE_HEADER",
    "HookChange",
    "HookDispatcher",
    "HookEvent",
    "HookListener",
    "HookRegistry",
    "HookRejection",
    "HookType",
    "InvalidHookResult",
    "PreCreateResult",
    "ProgressThrottle",
    "SignatureError",
    "UploadSnapshot",
    "WebhookConfig",
    "build_event",
    "sign",
    "verify_signature",
]
