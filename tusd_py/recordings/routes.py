"""Mounting the Recordings API on the server's aiohttp application.

``make_app`` calls :func:`add_recordings_routes` once the tus routes are in place, passing the
same ``TusService`` and ``Pipeline`` the tus handlers use (a feature module never imports the
factory), so the gate, error and CORS middlewares apply to them unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web

from tusd_py.pipeline.service import Pipeline
from tusd_py.recordings.handlers import RecordingsHandlers
from tusd_py.recordings.openapi import encode_document
from tusd_py.service import TusService

OPENAPI_PATH = "/openapi.json"


def openapi_path(prefix: str = "/api") -> str:
    """Where the OpenAPI document is served (a public route: there are no secrets in it)."""
    return prefix.rstrip("/") + OPENAPI_PATH


def add_recordings_routes(app: web.Application, service: TusService, pipeline: Pipeline, prefix: str = "/api") -> None:
    prefix = prefix.rstrip("/")
    handlers = RecordingsHandlers(service, pipeline, encode_document(prefix))
    router = app.router
    # No implicit HEAD routes: the route table is compared with the OpenAPI document, both ways.
    # Names tell the gate (tusd_py.gate) what a route is: only public.* runs without a token.
    api, public = _names(prefix, "api"), _names(prefix, "public")
    router.add_get(f"{prefix}/recordings", handlers.list_recordings, allow_head=False, name=api("recordings"))
    one = f"{prefix}/recordings/{{upload_id}}"
    router.add_get(one, handlers.get_recording, allow_head=False, name=api("recording"))
    router.add_delete(one, handlers.delete_recording, name=api("recording"))
    router.add_get(f"{prefix}/queue", handlers.queue, allow_head=False, name=api("queue"))
    router.add_post(f"{prefix}/sync", handlers.sync, name=api("sync"))
    router.add_get(f"{prefix}/stats", handlers.stats, allow_head=False, name=api("stats"))
    router.add_post(f"{prefix}/cleanup", handlers.cleanup, name=api("cleanup"))
    router.add_get(openapi_path(prefix), handlers.openapi, allow_head=False, name=public("openapi"))


def _names(prefix: str, kind: str) -> Callable[[str], str]:
    """Route names unique per prefix, in the dotted-identifier form aiohttp requires."""
    parts = ["_" + re.sub(r"\W", "_", segment) for segment in prefix.split("/") if segment]
    return lambda what: ".".join([kind, *parts, what])
