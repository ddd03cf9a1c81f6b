"""The HTTP side of hooks: each request's :class:`~tusd_py.hooks.context.HookScope`, and the hooks'
answers merged into the response as it leaves.

The hooks package knows a request only through the scope (forwarded headers, tusd's request
facts); this module builds the scope from the aiohttp request and shapes the response.
"""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tusd_py.hooks.context import SCOPE, HookScope, StoppedUploads, pick_headers
from tusd_py.hooks.events import HTTPRequestFacts
from tusd_py.hooks.tusd_format import canonical_header_key
from tusd_py.http.gate import OPERATION


def request_facts(request: web.Request) -> HTTPRequestFacts:
    """The request as tusd's ``HTTPRequest`` has it: effective method, raw URI, peer, headers."""
    operation = request.get(OPERATION)
    header: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        header.setdefault(canonical_header_key(name), []).append(value)
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""
    return HTTPRequestFacts(
        method=operation.method if operation is not None else request.method,
        uri=request.raw_path,
        remote_addr=remote,
        header=header,
    )


def hook_scope_middleware(forward: Collection[str], stopped: StoppedUploads | None = None) -> Middleware:
    """Place it outside the error mapping: a refusal replaces the error response it rendered."""
    wanted = tuple(sorted({name.strip().lower() for name in forward if name.strip()}))

    @web.middleware
    async def hook_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
        scope = HookScope(pick_headers(request.headers, wanted), lambda: request_facts(request))
        token = SCOPE.set(scope)
        try:
            response = await handler(request)
        finally:
            SCOPE.reset(token)
        if stopped is not None and response.status == 423 and scope.facts().method == "PATCH":
            scope.refusal = stopped.take(request.match_info.get("upload_id", ""))  # cut by a StopUpload?
        return shape_response(response, scope)

    return hook_scope


def shape_response(response: web.StreamResponse, scope: HookScope) -> web.StreamResponse:
    """Merge the hooks' answers into ``response``, as tusd merges a hook's ``HTTPResponse``."""
    if not isinstance(response, web.Response) or response.prepared:
        return response  # a streamed answer (a download) has no hook in it
    if response.status >= 400 and scope.refusal is not None:
        patch = scope.refusal
        refused = web.Response(status=patch.status or response.status, text=None, body=patch.body.encode())
        refused.headers.update(patch.headers)
        return refused
    if 200 <= response.status < 300 and scope.response is not None:
        patch = scope.response
        if patch.status:
            response.set_status(patch.status)
        for name, value in patch.headers.items():
            if name.lower() != "location":  # tusd sets Location after merging the hook's answer
                response.headers[name] = value
        if patch.body and response.status not in (204, 304):
            response.body = patch.body.encode()
    return response
