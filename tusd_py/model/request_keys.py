"""Typed keys for what middlewares store on a request."""

from __future__ import annotations

from aiohttp import web

REQUEST_ID = web.RequestKey("request_id", str)
CORS_ORIGIN = web.RequestKey("cors_origin", str)  # absent: no CORS headers for this request
#: The CORS headers of this request's response (set with CORS_ORIGIN, from the server's policy).
CORS_HEADERS = web.RequestKey("cors_headers", dict)
#: The response whose headers went out, set when one is prepared: after that, an error cannot be
#: answered with another response (see middlewares.error_responses).
STARTED_RESPONSE = web.RequestKey("started_response", web.StreamResponse)
#: The successor URL of a deprecated API path (``/api/...`` -> ``/api/v1/...``), for the response headers.
DEPRECATED_FOR = web.RequestKey("deprecated_for", str)
#: Set on every request a Recordings API route handles (its public ones too): errors as problem documents.
API_REQUEST = web.RequestKey("api_request", bool)
