"""Mounting the Recordings API on the server's aiohttp application.

``make_app`` calls :func:`add_recordings_routes` once the tus routes are in place, passing the
same operation layer (``Uploads``) and ``Pipeline`` the tus handlers use (a feature module never
imports the factory), so the gate, error and CORS middlewares apply to them unchanged. Whether its
token routes are served with auth off is decided once, here, by :mod:`tusd_py.recordings.exposure`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from tusd_py.http.downloads import SignedDownloads
from tusd_py.model.error_codes import ErrorCode
from tusd_py.model.errors import TusError
from tusd_py.model.request_keys import API_REQUEST, DEPRECATED_FOR
from tusd_py.pipeline.service import Pipeline
from tusd_py.recordings import exposure, params
from tusd_py.recordings.handlers import RecordingsHandlers
from tusd_py.recordings.openapi import build_document, encode_document, query_parameters
from tusd_py.uploads.operations import Uploads

log = structlog.get_logger(__name__)

OPENAPI_PATH = "/openapi.json"
#: The versioned API. ``/api`` serves the same routes for one more release, marked deprecated
#: (``Deprecation`` and a ``Link`` to the successor on every answer).
API_PREFIX = "/api/v1"
LEGACY_API_PREFIX = "/api"


def openapi_path(prefix: str = API_PREFIX) -> str:
    """Where the OpenAPI document is served (a public route: there are no secrets in it)."""
    return prefix.rstrip("/") + OPENAPI_PATH


def add_recordings_routes(
    app: web.Application,
    uploads: Uploads,
    pipeline: Pipeline,
    downloads: SignedDownloads,
    prefix: str = API_PREFIX,
    successor: str | None = None,
) -> None:
    """Mount the API under ``prefix``; with ``successor`` (the prefix that replaces it) every
    answer says the prefix is deprecated and links to the same path under the successor."""
    prefix = prefix.rstrip("/")
    document = build_document(prefix)
    handlers = RecordingsHandlers(uploads, pipeline, encode_document(document))
    router = app.router
    # Names tell the gate (tusd_py.http.gate) what a route is: only public.* runs without a token.
    api, public = _names(prefix, "api"), _names(prefix, "public")
    config = uploads.service.config
    exposed = exposure.decide(config)
    if not config.auth_enabled and successor is None:  # said once, for the current prefix
        say = log.info if exposed.served and not config.api_without_auth else log.warning
        say("recordings API " + ("served" if exposed.served else "refused (403)"), prefix=prefix, reason=exposed.reason)

    def add(method: str, path: str, handler: Handler, name: str) -> None:
        known = query_parameters(document, path, method.lower())
        refused = not exposed.served and not name.startswith("public.")

        async def only_documented_query(request: web.Request) -> web.StreamResponse:
            request[API_REQUEST] = True
            if successor is not None:
                request[DEPRECATED_FOR] = successor + request.rel_url.raw_path[len(prefix) :]  # still %-encoded
            if refused:
                raise TusError(
                    403, exposure.REFUSED, {hdrs.CACHE_CONTROL: "no-store"}, code=ErrorCode.API_REFUSED_WITHOUT_AUTH
                )
            params.check_known(request.query.keys(), known)
            return await handler(request)

        # No implicit HEAD routes: the route table is compared with the OpenAPI document, both ways.
        router.add_route(method, path, only_documented_query, name=name)

    one = f"{prefix}/recordings/{{upload_id}}"
    add("GET", f"{prefix}/recordings", handlers.list_recordings, api("recordings"))
    add("GET", one, handlers.get_recording, api("recording"))
    add("DELETE", one, handlers.delete_recording, api("recording"))
    add("GET", f"{prefix}/queue", handlers.queue, api("queue"))
    add("POST", f"{prefix}/sync", handlers.sync, api("sync"))
    add("GET", f"{prefix}/stats", handlers.stats, api("stats"))
    add("POST", f"{prefix}/cleanup", handlers.cleanup, api("cleanup"))
    add("GET", openapi_path(prefix), handlers.openapi, public("openapi"))
    add("POST", f"{one}/download-url", downloads.create_url, api("download-url"))


def _names(prefix: str, kind: str) -> Callable[[str], str]:
    """Route names unique per prefix, in the dotted-identifier form aiohttp requires."""
    parts = ["_" + re.sub(r"\W", "_", segment) for segment in prefix.split("/") if segment]
    return lambda what: ".".join([kind, *parts, what])
