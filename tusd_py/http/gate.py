"""The one gate every request passes before its handler: which operation it is, and who asks.

aiohttp resolves the route before middlewares run, so the gate knows the route and applies the
rules of :mod:`tusd_py.protocol.operation` to it: the X-HTTP-Method-Override rules, then, with auth
on, a verified bearer token for every operation that is not public. Handlers never look at the
override or the Authorization header themselves: they read :data:`OPERATION` and :data:`CALLER`.
:func:`caller_id` fails closed, so a handler reached without the gate acts for nobody.

Routes declare what they are by name: ``tus.*`` routes pick their handler by the effective method
(the override applies), ``public.*`` routes run without credentials. Every other route, and
aiohttp's own 404/405 answers, is behind the token check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from tusd_py.model.errors import TusError
from tusd_py.protocol.operation import OVERRIDE_HEADER, Operation, resolve_operation
from tusd_py.uploads.actor import Actor, client

if TYPE_CHECKING:
    from tusd_py.auth.verifier import Principal, TokenVerifier

log = structlog.get_logger(__name__)

TUS_ROUTE_PREFIX = "tus."
PUBLIC_ROUTE_PREFIX = "public."


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request acts for. ``user_id`` None means auth is off: one anonymous caller owns everything."""

    user_id: str | None
    principal: Principal | None = None


ANONYMOUS = Caller(user_id=None)
OPERATION = web.RequestKey("operation", Operation)
CALLER = web.RequestKey("caller", Caller)


def caller_id(request: web.Request) -> str | None:
    """The user a request acts for (None: auth is off). Raises 401 for a request the gate let through
    without credentials (a public operation), so no handler can ever act for "nobody"."""
    caller: Caller | None = request.get(CALLER)
    if caller is None:
        raise TusError(401, "authentication required", {hdrs.CACHE_CONTROL: "no-store"})
    return caller.user_id


def actor(request: web.Request) -> Actor:
    """The request as the operation layer sees it: a client acting for :func:`caller_id`."""
    return client(caller_id(request))


def gate_middleware(verifier: TokenVerifier | None) -> Middleware:
    """The gate; ``verifier`` None means auth is off. Placed after the error middleware, so its
    refusals are mapped like every other error."""

    if verifier is not None:
        from tusd_py.auth.errors import AuthError  # pyjwt and cryptography load only with auth on

    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        route_name = request.match_info.route.name or ""
        operation = resolve_operation(
            request.method,
            request.headers.get(OVERRIDE_HEADER),
            tus_route=route_name.startswith(TUS_ROUTE_PREFIX),
            public_route=route_name.startswith(PUBLIC_ROUTE_PREFIX),
        )
        request[OPERATION] = operation
        if verifier is None:
            request[CALLER] = ANONYMOUS
        elif not operation.public:
            try:
                principal = await verifier.authorize(request.headers.get(hdrs.AUTHORIZATION))
            except AuthError as exc:
                log.info("authentication failed", reason=exc.reason, method=operation.method, path=request.path)
                raise
            request[CALLER] = Caller(user_id=principal.user_id, principal=principal)
            structlog.contextvars.bind_contextvars(user_id=principal.user_id)
        return await handler(request)

    return gate
