"""tus "Termination" extension: DELETE ends an upload and frees its bytes.

The deletion itself is :meth:`Uploads.delete`, the one path every deleter takes (the draft's
DELETE, the Recordings API, cleanup, the expiry sweep): owner first, then the lock taken over like
a PATCH takes it (a PATCH still streaming is interrupted rather than raced), a pre-terminate hook,
the fenced terminate, then the listeners.
"""

from __future__ import annotations

from aiohttp import web

from storage_backends.base import CAP_TERMINATION
from tusd_py.http.gate import actor
from tusd_py.uploads.extension_api import Extension, Handler, RouteKey
from tusd_py.uploads.operations import Uploads


async def terminate(uploads: Uploads, request: web.Request) -> web.StreamResponse:
    await uploads.delete(actor(request), request.match_info.get("upload_id", ""))
    return web.Response(status=204)


class Termination(Extension):
    name = "termination"
    requires = CAP_TERMINATION

    def routes(self) -> dict[RouteKey, Handler]:
        return {("upload", "DELETE"): terminate}
