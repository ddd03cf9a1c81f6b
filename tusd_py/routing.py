"""Routes every request on the collection and upload URLs to the handler for its *effective* method.

aiohttp picks routes by the method on the wire, which is too early for X-HTTP-Method-Override
(HTTP stacks that cannot send PATCH or DELETE, like old Android HttpURLConnection, send POST with
the override header). So two catch-all routes feed this dispatcher, which applies the override,
the Tus-Resumable rule and then the handler table built from the core and the enabled extensions.
"""

from __future__ import annotations

from aiohttp import web

from extensions.base import Handler, RouteKey
from tusd_py import core
from tusd_py.errors import TusError
from tusd_py.protocol.headers import check_tus_resumable
from tusd_py.service import TusService

_OVERRIDABLE = frozenset({"PATCH", "DELETE", "HEAD", "GET", "OPTIONS", "POST"})
# The spec exempts OPTIONS; GET is a download, not a tus request (browsers and players can't add headers).
_NO_TUS_RESUMABLE = frozenset({"OPTIONS", "GET"})


def effective_method(request: web.Request) -> str:
    override = request.headers.get("X-HTTP-Method-Override")
    if override is None:
        return request.method
    method = override.strip().upper()
    if method not in _OVERRIDABLE:
        raise TusError(400, f"X-HTTP-Method-Override {override[:20]!r} is not a method this server knows")
    return method


class Dispatcher:
    def __init__(self, service: TusService) -> None:
        self.service = service
        self.table: dict[RouteKey, Handler] = {
            ("collection", "OPTIONS"): core.options,
            ("upload", "OPTIONS"): core.options,
            ("upload", "HEAD"): core.head,
            ("upload", "PATCH"): core.patch,
            ("upload", "GET"): core.get,
        }
        for ext in service.extensions:
            self.table.update(ext.routes())

    async def collection(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch("collection", request)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch("upload", request)

    async def _dispatch(self, target: str, request: web.Request) -> web.StreamResponse:
        method = effective_method(request)
        if method not in _NO_TUS_RESUMABLE:
            check_tus_resumable(request.headers.get("Tus-Resumable"))
        handler = self.table.get((target, method))
        if handler is None:
            allowed = sorted(m for (t, m) in self.table if t == target)
            raise TusError(405, f"{method} is not allowed here", {"Allow": ", ".join(allowed)})
        if method != request.method:
            # Handlers read request.method (GET streams no body for HEAD); make it the effective one.
            request = request.clone(method=method)
        return await handler(self.service, request)
