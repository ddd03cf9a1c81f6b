"""A hook's link to the request that caused it: what the event learns, and what the hook answers back.

Listeners are told about an upload, not about a request, so the request's part travels in context
variables: structlog's (``request_id``, bound by the request middleware) and :data:`SCOPE`, set by
the HTTP layer's :func:`~tusd_py.http.hook_scope.hook_scope_middleware` for each request. The
scope gives events the headers named by ``--hooks-forward-headers`` and, for tusd's format, the
request itself (method, URI, peer, every header). The other way, tusd-format hooks shape the
client's response (``HTTPResponse``): the dispatcher puts their patches into the scope and the
middleware merges them into the response as it leaves (a refusal replaces the error response).
The scope ends with the request, so a kept-alive connection's next request starts clean.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from contextvars import ContextVar

import msgspec
import structlog

from tusd_py.hooks.events import HookEvent, HookType, HTTPRequestFacts, ProcessOutcome, build_event
from tusd_py.hooks.tusd_format import ResponsePatch
from tusd_py.model.upload import UploadInfo

# A forwarded value is cut here: a hook event is no place for a megabyte cookie.
MAX_FORWARDED_VALUE = 1024


class HookScope:
    """One request as hooks see it. Built per request; the request facts only when asked for."""

    def __init__(self, forwarded: dict[str, str], read_facts: Callable[[], HTTPRequestFacts]) -> None:
        self.forwarded = forwarded
        self._read_facts = read_facts
        self.response: ResponsePatch | None = None  # merged into a 2xx answer
        self.refusal: ResponsePatch | None = None  # replaces the error answer of a refused request
        self._facts: HTTPRequestFacts | None = None

    def facts(self) -> HTTPRequestFacts:
        if self._facts is None:
            self._facts = self._read_facts()
        return self._facts

    def add_response(self, patch: ResponsePatch) -> None:
        self.response = patch if self.response is None else self.response.merge(patch)


SCOPE: ContextVar[HookScope | None] = ContextVar("hook_scope", default=None)


class StoppedUploads:
    """Uploads a post-receive hook stopped (tusd's ``StopUpload``), with the response tusd would give
    the PATCH it cut. The stop deletes the upload the way a DELETE does, which cuts a PATCH still
    writing it (423); that PATCH gets the hook's answer instead. One answer per stop, kept for a
    minute at most (the PATCH is cut within the lock timeout), in this process."""

    KEEP = 60.0
    LIMIT = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._answers: dict[str, tuple[float, ResponsePatch]] = {}

    def remember(self, upload_id: str, answer: ResponsePatch) -> None:
        now = self._clock()
        if len(self._answers) >= self.LIMIT:
            self._answers = {k: v for k, v in self._answers.items() if v[0] > now - self.KEEP}
        self._answers[upload_id] = (now, answer)

    def take(self, upload_id: str) -> ResponsePatch | None:
        found = self._answers.pop(upload_id, None)
        return found[1] if found is not None and found[0] > self._clock() - self.KEEP else None


def request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def forwarded_headers() -> dict[str, str]:
    scope = SCOPE.get()
    return dict(scope.forwarded) if scope is not None else {}


def current_request() -> HTTPRequestFacts | None:
    scope = SCOPE.get()
    return scope.facts() if scope is not None else None


def with_request(event: HookEvent) -> HookEvent:
    """``event`` with the current request attached, if it has none and there is one."""
    if event.http_request is not None:
        return event
    facts = current_request()
    return event if facts is None else msgspec.structs.replace(event, http_request=facts)


def answer(patch: ResponsePatch | None, *, refusal: bool = False) -> None:
    """A hook's ``HTTPResponse`` for the current request (nothing happens outside a request)."""
    scope = SCOPE.get()
    if scope is None or patch is None:
        return
    if refusal:
        scope.refusal = patch
    else:
        scope.add_response(patch)


def event_here(
    hook_type: HookType,
    info: UploadInfo,
    *,
    storage: dict[str, str] | None,
    process: ProcessOutcome | None = None,
    clock: Callable[[], float] = time.time,
) -> HookEvent:
    """The event for ``info``, with what the current request (if any) tells: id, headers, request."""
    event = build_event(
        hook_type,
        info,
        user_id=info.owner,
        request_id=request_id(),
        storage=storage,
        headers=forwarded_headers(),
        process=process,
        clock=clock,
    )
    return with_request(event)


def pick_headers(headers: object, names: Collection[str]) -> dict[str, str]:
    """The allow-listed ``names`` (lower-case) present in ``headers``, values bounded. Pure."""
    get = getattr(headers, "getall", None)
    picked: dict[str, str] = {}
    for name in names:
        values = get(name, []) if get is not None else []
        if values:
            picked[name] = ", ".join(values)[:MAX_FORWARDED_VALUE]
    return picked
