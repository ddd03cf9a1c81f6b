"""Cross-cutting request handling, each done once: request id and logging, error mapping, CORS."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from http import HTTPStatus

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tusd_py.config.values import Config
from tusd_py.http.cors import CorsPolicy, allowed_origin, cors_headers, is_preflight
from tusd_py.http.gate import OPERATION
from tusd_py.model.error_codes import ErrorCode, default_code, problem_type
from tusd_py.model.errors import TusError, insufficient_storage
from tusd_py.model.request_keys import (
    API_REQUEST,
    CORS_HEADERS,
    CORS_ORIGIN,
    DEPRECATED_FOR,
    REQUEST_ID,
    STARTED_RESPONSE,
)
from tusd_py.model.storage_errors import StorageError, StorageFull, StorageUnavailable, UploadNotFound
from tusd_py.protocol.headers import TUS_VERSION
from tusd_py.telemetry import metrics

ERROR_CODE = web.RequestKey("error_code", str)
#: Routes of the Recordings API (tusd_py/recordings/routes.py names them so): errors as problem documents.
API_ROUTE_PREFIX = "api."

log = structlog.get_logger("tusd_py.http")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class _RequestIds:
    """Request ids need to be unique, not secret: a random prefix per process (fresh after a fork,
    so --processes workers never share one) and a counter. secrets.token_hex per request was a
    getrandom() syscall each, 4.7% of the server's samples in bench/ small."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):08x}"


_request_ids = _RequestIds()


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One request id per request, bound to every log line it causes, echoed to the client."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _REQUEST_ID.fullmatch(incoming) else _request_ids.next()
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        request[ERROR_CODE] = default_code(exc.status)
        raise
    finally:
        elapsed = time.perf_counter() - started
        log.info("request", method=request.method, path=request.path, status=status, ms=round(elapsed * 1000, 1))
        operation = request.get(OPERATION)  # the effective method, as tusd counts it
        method = operation.method if operation is not None else request.method
        metrics.record_request(method, status, elapsed, request.get(ERROR_CODE))


@web.middleware
async def error_responses(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors are values: map each to a plain-text response with a reason, never a stack trace.

    Once a response has started (its status line and headers prepared, a streamed GET) no error
    can be answered any more: a second response would land inside the first one's body and
    desync a keep-alive client. The connection is closed instead, so the client sees a short body.
    """
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.text == f"{exc.status}: {exc.reason}":
            return _router_refusal(request, exc)
        raise
    except Exception as exc:
        code = error_code(exc)
        request[ERROR_CODE] = code  # the catalog's names: a bounded set of tusd_errors_total codes
        structlog.contextvars.bind_contextvars(error=code)
        started = request.get(STARTED_RESPONSE)
        if started is not None:
            return _abort(request, started, exc)
        response = _error_response(exc)
        api = request.get(API_REQUEST) or (request.match_info.route.name or "").startswith(API_ROUTE_PREFIX)
        if api and response.status >= 400:
            return _api_problem(response, exc, code)
        return response


def error_code(exc: Exception) -> str:
    """The catalog name of an error (tusd_py/model/error_codes.py), for metrics, logs and problem types."""
    if isinstance(exc, TusError):
        return exc.code
    if isinstance(exc, UploadNotFound):
        return ErrorCode.UPLOAD_NOT_FOUND
    if isinstance(exc, StorageFull):
        return ErrorCode.STORAGE_FULL
    if isinstance(exc, StorageUnavailable):
        return ErrorCode.STORAGE_UNAVAILABLE
    if isinstance(exc, StorageError):
        return ErrorCode.STORAGE_ERROR
    return ErrorCode.INTERNAL_ERROR


def _api_problem(plain: web.Response, exc: Exception, code: str) -> web.Response:
    """The Recordings API answers errors as RFC 9457 problem documents: ``type`` names the error
    code, ``detail`` is the reason the plain-text answer carries, ``code`` repeats it for clients
    that match on a string."""
    reason = exc.reason if isinstance(exc, TusError) else (plain.text or "").strip()
    document = {
        "type": problem_type(code),
        "title": _title(plain.status),
        "status": plain.status,
        "detail": reason,
        "code": code,
    }
    headers = {k: v for k, v in plain.headers.items() if k.lower() not in ("content-type", "content-length")}
    return _problem(plain.status, document, headers)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _router_refusal(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (no route, method not allowed) carry a bare "404: Not Found" page:
    give them a reason like every other error."""
    if exc.status == 404:
        return _text(404, f"no such path: {request.path}")
    if exc.status == 405:
        return _text(405, f"method {request.method} not allowed on {request.path}", {"Allow": exc.headers["Allow"]})
    return _text(exc.status, exc.reason.lower())


def _error_response(exc: Exception) -> web.Response:
    """The one place where errors become statuses."""
    if isinstance(exc, TusError):
        if exc.problem is not None:
            return _problem(exc.status, exc.problem, exc.headers)
        return _text(exc.status, exc.reason, exc.headers)
    if isinstance(exc, UploadNotFound):
        return _text(404, "upload not found")
    if isinstance(exc, StorageFull):
        log.warning("storage full", error=str(exc))
        full = insufficient_storage()
        return _text(full.status, full.reason, full.headers)
    if isinstance(exc, StorageUnavailable):
        log.warning("storage unavailable", error=str(exc))
        return _text(503, "storage is temporarily unavailable; retry later", {"Retry-After": "5"})
    if isinstance(exc, StorageError):
        log.error("storage error", error=str(exc))
        return _text(500, "storage error")
    log.exception("unhandled error", exc_info=exc)
    return _text(500, "internal server error")


def _abort(request: web.Request, started: web.StreamResponse, exc: Exception) -> web.StreamResponse:
    transport = request.transport
    if transport is None or transport.is_closing():
        # The client went away while we wrote to it: expected client behaviour, not an error.
        log.info("client disconnected mid-response", status=started.status, error=type(exc).__name__)
    elif isinstance(exc, UploadNotFound):  # deleted while it streamed: a DELETE won the race
        log.info("response aborted: upload gone", status=started.status)
    elif isinstance(exc, TusError | StorageError):
        log.warning("response aborted after its headers", status=started.status, error=repr(exc))
    else:
        log.exception("unhandled error after the response started", status=started.status, exc_info=exc)
    # force_close also makes aiohttp skip keep-alive; finishing the started response then writes nothing.
    request.protocol.force_close()
    return started


def _problem(status: int, problem: dict[str, object], headers: dict[str, str]) -> web.Response:
    body = msgspec.json.encode(problem)
    return web.Response(status=status, body=body, content_type="application/problem+json", headers=headers)


def _text(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=reason + "\n", headers=headers or {})


def cors_middleware(config: Config) -> Middleware:
    """Answers preflights; the headers of every other response are added in :func:`add_response_headers`."""

    policy = CorsPolicy.build(
        config.cors_origins,
        config.cors_allow_origin,
        credentials=config.cors_allow_credentials,
        methods=config.cors_allow_methods,
        # A header forwarded to hooks is one a browser app sends: its preflight must allow it.
        allow_headers=[*config.cors_allow_headers, *config.hooks_forward_headers],
        expose_headers=config.cors_expose_headers,
        max_age=config.cors_max_age,
        disabled=config.disable_cors,
    )

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = allowed_origin(request.headers.get("Origin"), policy=policy)
        if origin is not None:
            request[CORS_ORIGIN] = origin
            request[CORS_HEADERS] = cors_headers(origin, preflight=False, policy=policy)
        if origin is not None and is_preflight(request.method, request.headers):
            return web.Response(status=204, headers=cors_headers(origin, preflight=True, policy=policy))
        return await handler(request)

    return cors


async def add_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs for every response, streamed ones and aiohttp's own errors included."""
    request[STARTED_RESPONSE] = response
    response.headers.setdefault("Tus-Resumable", TUS_VERSION)
    # As tusd sends on every response: no browser may guess a type (a download, an error's text).
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    request_id = request.get(REQUEST_ID)
    if request_id:
        response.headers["X-Request-ID"] = request_id
    successor = request.get(DEPRECATED_FOR)
    if successor is not None:  # RFC 9745 Deprecation, RFC 8288 Link to the version that replaces it
        response.headers["Deprecation"] = "true"
        response.headers["Link"] = f'<{successor}>; rel="successor-version"'
    cors = request.get(CORS_HEADERS)
    if cors is not None and "Access-Control-Allow-Origin" not in response.headers:
        response.headers.update(cors)
