"""tus "Termination" extension: DELETE ends an upload and frees its bytes.

The deletion itself is :meth:`TusService.delete_upload`, shared with every other deleter; it takes
the upload's lock like a PATCH does, so a PATCH still streaming is interrupted rather than raced.
"""

from __future__ import annotations

from aiohttp import web

from extensions.base import Extension, Handler, RouteKey
from storage_backends.base import CAP_TERMINATION, UploadInfo
from tusd_py.errors import not_found
from tusd_py.service import TusService


async def terminate(service: TusService, request: web.Request) -> web.StreamResponse:
    def visible(info: UploadInfo) -> bool:
        service.check_access(request, info)  # raises 404 / 410 for this user
        return True

    if await service.delete_upload(service.upload_id(request), check=visible) is None:
        raise not_found()
    return web.Response(status=204)


class Termination(Extension):
    name = "termination"
    requires = CAP_TERMINATION

    def routes(self) -> dict[RouteKey, Handler]:
        return {("upload", "DELETE"): terminate}
