"""tus "Termination" extension: DELETE ends an upload and frees its bytes.

DELETE takes the upload's lock like a PATCH does, so it interrupts a PATCH still streaming into
the upload (that request keeps nothing, since the upload is then gone) instead of racing it.
"""

from __future__ import annotations

from aiohttp import web

from extensions.base import Extension, Handler, RouteKey
from storage_backends.base import CAP_TERMINATION, UploadNotFound
from tusd_py.errors import not_found
from tusd_py.service import TusService


async def terminate(service: TusService, request: web.Request) -> web.StreamResponse:
    upload_id = service.upload_id(request)
    async with service.locker.lock(upload_id):
        info = await service.load(request, upload_id)
        try:
            await service.store.terminate(upload_id)
        except UploadNotFound:
            raise not_found() from None
    await service.lifecycle.terminated(info)
    return web.Response(status=204)


class Termination(Extension):
    name = "termination"
    requires = CAP_TERMINATION

    def routes(self) -> dict[RouteKey, Handler]:
        return {("upload", "DELETE"): terminate}
