"""What a hook event learns from the request that caused it: its id and the allow-listed headers.

Listeners are told about an upload, not about a request, so the request's part travels in context
variables: structlog's (``request_id``, bound by the request middleware) and :data:`FORWARDED`,
set by :func:`forward_headers_middleware` for the headers named by ``--hooks-forward-headers``.
Both are reset when the request ends, so a kept-alive connection's next request starts clean.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from contextvars import ContextVar

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from storage_backends.base import UploadInfo
from tusd_py.hooks.events import HookEvent, HookType, ProcessOutcome, build_event

# A forwarded value is cut here: a hook event is no place for a megabyte cookie.
MAX_FORWARDED_VALUE = 1024

_EMPTY: dict[str, str] = {}
FORWARDED: ContextVar[dict[str, str]] = ContextVar("hook_forwarded_headers", default=_EMPTY)


def request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def forwarded_headers() -> dict[str, str]:
    return dict(FORWARDED.get())


def event_here(
    hook_type: HookType,
    info: UploadInfo,
    *,
    storage: dict[str, str] | None,
    process: ProcessOutcome | None = None,
    clock: Callable[[], float] = time.time,
) -> HookEvent:
    """The event for ``info``, with what the current request (if any) tells: id and headers."""
    return build_event(
        hook_type,
        info,
        user_id=info.owner,
        request_id=request_id(),
        storage=storage,
        headers=forwarded_headers(),
        process=process,
        clock=clock,
    )


def pick_headers(headers: object, names: Collection[str]) -> dict[str, str]:
    """The allow-listed ``names`` (lower-case) present in ``headers``, values bounded. Pure."""
    get = getattr(headers, "getall", None)
    picked: dict[str, str] = {}
    for name in names:
        values = get(name, []) if get is not None else []
        if values:
            picked[name] = ", ".join(values)[:MAX_FORWARDED_VALUE]
    return picked


def forward_headers_middleware(names: Collection[str]) -> Middleware:
    wanted = tuple(sorted({name.strip().lower() for name in names if name.strip()}))

    @web.middleware
    async def forward(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = FORWARDED.set(pick_headers(request.headers, wanted))
        try:
            return await handler(request)
        finally:
            FORWARDED.reset(token)

    return forward
