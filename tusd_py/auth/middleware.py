"""aiohttp middleware: verify the bearer token once per request and record who is calling.

On success it stores ``request[PRINCIPAL]`` and ``request[USER_ID]`` (the key
:func:`tusd_py.service.principal_id` reads). Both stay absent when auth is off, for OPTIONS and
for exempt routes, so ``request.get(PRINCIPAL)`` is None there.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from tusd_py.auth.errors import AuthError
from tusd_py.auth.verifier import Principal, TokenVerifier
from tusd_py.request_keys import USER_ID

log = structlog.get_logger(__name__)

PRINCIPAL = web.RequestKey("principal", Principal)


def _never(_: web.Request) -> bool:
    return False


def auth_middleware(verifier: TokenVerifier, *, exempt: Callable[[web.Request], bool] = _never) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # CORS preflights carry no credentials (Fetch standard, "CORS-preflight request"), so
        # they must pass, or browsers could never upload.
        if not verifier.enabled or request.method == hdrs.METH_OPTIONS or exempt(request):
            return await handler(request)
        try:
            principal = verifier.verify_authorization(request.headers.get(hdrs.AUTHORIZATION))
        except AuthError as exc:
            log.info("authentication failed", reason=exc.reason, method=request.method, path=request.path)
            return web.Response(
                status=exc.status,
                text=exc.reason,
                content_type="text/plain",
                headers={hdrs.WWW_AUTHENTICATE: exc.www_authenticate, hdrs.CACHE_CONTROL: "no-store"},
            )
        request[PRINCIPAL] = principal
        request[USER_ID] = principal.user_id
        structlog.contextvars.bind_contextvars(user_id=principal.user_id)
        return await handler(request)

    return middleware
