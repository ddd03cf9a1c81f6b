"""Mounting the Recordings API on the server's aiohttp application.

``make_app`` calls :func:`add_recordings_routes` once the tus routes are in place. The routes
reach the same ``TusService`` and ``Pipeline`` the tus handlers use, so the auth, error and CORS
middlewares apply to them unchanged.
"""

from __future__ import annotations

from aiohttp import web

from tusd_py.recordings.handlers import RecordingsHandlers
from tusd_py.recordings.openapi import encode_document

OPENAPI_PATH = "/openapi.json"


def openapi_path(prefix: str = "/api") -> str:
    """Where the OpenAPI document is served; the auth middleware should exempt it (no secrets in it)."""
    return prefix.rstrip("/") + OPENAPI_PATH


def add_recordings_routes(app: web.Application, prefix: str = "/api") -> None:
    # Imported here: tusd_py.app imports this module to call this function.
    from tusd_py.app import PIPELINE_KEY, SERVICE_KEY

    prefix = prefix.rstrip("/")
    handlers = RecordingsHandlers(app[SERVICE_KEY], app[PIPELINE_KEY], encode_document(prefix))
    router = app.router
    # No implicit HEAD routes: the route table is compared with the OpenAPI document, both ways.
    router.add_get(f"{prefix}/recordings", handlers.list_recordings, allow_head=False)
    router.add_get(f"{prefix}/recordings/{{upload_id}}", handlers.get_recording, allow_head=False)
    router.add_delete(f"{prefix}/recordings/{{upload_id}}", handlers.delete_recording)
    router.add_get(f"{prefix}/queue", handlers.queue, allow_head=False)
    router.add_post(f"{prefix}/sync", handlers.sync)
    router.add_get(f"{prefix}/stats", handlers.stats, allow_head=False)
    router.add_post(f"{prefix}/cleanup", handlers.cleanup)
    router.add_get(openapi_path(prefix), handlers.openapi, allow_head=False)
