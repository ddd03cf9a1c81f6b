"""Routes every request on the collection and upload URLs to the handler for its *effective* method.

aiohttp picks routes by the method on the wire, which is too early for X-HTTP-Method-Override
(HTTP stacks that cannot send PATCH or DELETE, like a JDK's HttpURLConnection, send POST with the
override header). So two catch-all routes feed this dispatcher, which takes the operation the gate
resolved (:mod:`tusd_py.http.gate`), applies the Tus-Resumable rule and then the handler table built from
the core and the enabled extensions. An extension speaking another protocol on the same URLs (the
IETF resumable-upload draft, ``extensions/resumable_draft.py``) may take a request over first.
The request itself keeps its wire method: aiohttp frames the response by it, so a handler
chosen by an override can never make a HEAD answer carry a body.
"""

from __future__ import annotations

from aiohttp import web

from tusd_py.http import tus_handlers as core
from tusd_py.http.gate import OPERATION
from tusd_py.model.errors import TusError
from tusd_py.protocol.headers import check_tus_resumable
from tusd_py.uploads.extension_api import Extension, Handler, RouteKey
from tusd_py.uploads.operations import Uploads

# The spec exempts OPTIONS; GET is a download, not a tus request (browsers and players can't add headers).
_NO_TUS_RESUMABLE = frozenset({"OPTIONS", "GET"})


class Dispatcher:
    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads
        service = uploads.service
        self.table: dict[RouteKey, Handler] = {
            ("collection", "OPTIONS"): core.options,
            ("upload", "OPTIONS"): core.options,
            ("upload", "HEAD"): core.head,
            ("upload", "PATCH"): core.patch,
        }
        if not service.config.disable_download:  # --disable-download: GET answers 405, as in tusd
            self.table[("upload", "GET")] = core.get
        for ext in service.extensions:
            self.table.update(ext.routes())
        # Only extensions that may take requests over are asked (tus requests pay nothing for the seam).
        self.takeovers = [
            ext for ext in service.extensions if type(ext).request_handler is not Extension.request_handler
        ]

    async def collection(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch("collection", request)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch("upload", request)

    async def _dispatch(self, target: str, request: web.Request) -> web.StreamResponse:
        method = request[OPERATION].method
        for ext in self.takeovers:
            takeover = ext.request_handler(target, method, request)
            if takeover is not None:
                return await takeover(self.uploads, request)
        if method not in _NO_TUS_RESUMABLE:
            check_tus_resumable(request.headers.get("Tus-Resumable"))
        handler = self.table.get((target, method))
        if handler is None:
            allowed = sorted(m for (t, m) in self.table if t == target)
            raise TusError(405, f"{method} is not allowed here", {"Allow": ", ".join(allowed)})
        return await handler(self.uploads, request)
