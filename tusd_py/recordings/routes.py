"""Mounting the Recordings API on the server's aiohttp application.

``make_app`` calls :func:`add_recordings_routes` once the tus routes are in place. The routes
reach the same ``TusService`` and ``Pipeline`` the tus handlers use, so the auth, error and CORS
middlewares apply to them unchanged.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from tusd_py.recordings import params
from tusd_py.recordings.handlers import RecordingsHandlers
from tusd_py.recordings.openapi import build_document, encode_document, query_parameters

OPENAPI_PATH = "/openapi.json"


def openapi_path(prefix: str = "/api") -> str:
    """Where the OpenAPI document is served; the auth middleware should exempt it (no secrets in it)."""
    return prefix.rstrip("/") + OPENAPI_PATH


def add_recordings_routes(app: web.Application, prefix: str = "/api") -> None:
    # Imported here: tusd_py.app imports this module to call this function.
    from tusd_py.app import PIPELINE_KEY, SERVICE_KEY

    prefix = prefix.rstrip("/")
    document = build_document(prefix)
    handlers = RecordingsHandlers(app[SERVICE_KEY], app[PIPELINE_KEY], encode_document(document))
    router = app.router

    def add(method: str, path: str, handler: Handler) -> None:
        known = query_parameters(document, path, method.lower())

        async def only_documented_query(request: web.Request) -> web.StreamResponse:
            params.check_known(request.query.keys(), known)
            return await handler(request)

        # No implicit HEAD routes: the route table is compared with the OpenAPI document, both ways.
        router.add_route(method, path, only_documented_query)

    add("GET", f"{prefix}/recordings", handlers.list_recordings)
    add("GET", f"{prefix}/recordings/{{upload_id}}", handlers.get_recording)
    add("DELETE", f"{prefix}/recordings/{{upload_id}}", handlers.delete_recording)
    add("GET", f"{prefix}/queue", handlers.queue)
    add("POST", f"{prefix}/sync", handlers.sync)
    add("GET", f"{prefix}/stats", handlers.stats)
    add("POST", f"{prefix}/cleanup", handlers.cleanup)
    add("GET", openapi_path(prefix), handlers.openapi)
