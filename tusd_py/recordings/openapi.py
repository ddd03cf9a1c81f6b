"""The OpenAPI 3.1 document of the Recordings API, served at ``{prefix}/openapi.json``.

Response schemas are generated from the msgspec types the handlers encode
(:mod:`tusd_py.recordings.schemas`) with :func:`msgspec.json.schema_components`, so the document
follows the code. OpenAPI 3.1 schemas are JSON Schema 2020-12, which is what msgspec emits.

The handlers always send every field (``null`` included), so every object schema lists all its
properties as required: a client generated from this document may rely on each field being there.
Response schemas allow further properties, so adding a field is not a breaking change; the tests
compare the encoded fields with the listed ones both ways, so the document still follows the code.
Errors are RFC 9457 problem documents (``Problem``) whose ``type`` names the error code.

The paths, parameters and error responses are written out below; the route table and this
document are compared by the tests, both ways.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tusd_py.model.error_codes import ErrorCode
from tusd_py.model.upload import UPLOAD_ID
from tusd_py.pipeline.store import CURSOR_PATTERN
from tusd_py.recordings import params
from tusd_py.recordings.schemas import (
    CleanupResult,
    DownloadUrl,
    Queue,
    RecordingDetail,
    RecordingPage,
    Stats,
    SyncResult,
)

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
REF = "#/components/schemas/{name}"

_RESPONSE_TYPES = (RecordingPage, RecordingDetail, Queue, SyncResult, Stats, CleanupResult, DownloadUrl)

_DESCRIPTION = """\
Recordings are tus uploads seen through their post-upload life:
`recorded` (created) -> `uploading` (some bytes stored) -> `uploaded` (every byte stored, queued
for processing) -> `processing` -> `completed` | `failed`. A recording is never deleted after
processing unless its owner asks (`DELETE`, `POST /cleanup`) or it failed and is older than the
server's cleanup period.

With auth on, every operation but this document needs `Authorization: Bearer <JWT>`, and shows
only the caller's recordings (another user's answers 404, like a missing one). With auth off,
the API shows the recordings of uploads made without auth.

Errors are RFC 9457 problem documents (`application/problem+json`): `type` is
`urn:tusd-py:problem:<code>` for a named error code (also in `code`), `detail` the reason.
Timestamps are RFC 3339 date-times in UTC. Responses may gain fields: ignore unknown ones.

The API lives under `/api/v1`; `/api` serves the same for one more release, with a
`Deprecation` header and a `Link` to the `/api/v1` path on every answer."""


_PROBLEM = {
    "type": "object",
    "description": "An RFC 9457 problem document",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference", "description": "urn:tusd-py:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "why, for a person"},
        "code": {"type": "string", "enum": [code.value for code in ErrorCode]},
    },
}


def _text(description: str) -> dict[str, Any]:
    """An error response: a problem document (the name stays short where the routes are written)."""
    schema = {"$ref": REF.format(name="Problem")}
    return {"description": description, "content": {"application/problem+json": {"schema": schema}}}


#: What any operation behind the token may answer besides its own statuses.
_EVERY_OPERATION = {
    "403": _text("the API is not served without auth here (--api-without-auth), or a hook refused"),
    "429": _text("too many requests; retry after Retry-After"),
    "500": _text("the server failed; the reason says what"),
    "503": _text("the state database, the storage or the lock service is unreachable; retry after Retry-After"),
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_UNAUTHORIZED = _text("missing, malformed or expired bearer token (auth on only)")
_NOT_FOUND = _text("no such recording for the caller (never created, deleted, or someone else's)")


def _bad_request(what: str) -> dict[str, Any]:
    return _text(f"invalid {what}")


def _limit(default: int) -> dict[str, Any]:
    return {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "how many items at most",
        "schema": {
            "type": "integer",
            "minimum": params.MIN_LIMIT,
            "maximum": params.MAX_LIMIT,
            "default": default,
        },
    }


_UPLOAD_ID_PARAM = {
    "name": "upload_id",
    "in": "path",
    "required": True,
    "description": "the recording's id, which is its tus upload id (the last segment of the upload URL)",
    "schema": {"type": "string", "pattern": f"^{UPLOAD_ID.pattern}$"},
}


def _paths(prefix: str, schema_of: dict[str, dict[str, Any]]) -> dict[str, Any]:
    status_param = {
        "name": "status",
        "in": "query",
        "required": False,
        "description": "only recordings in these statuses (comma-separated); all when absent",
        "style": "form",
        "explode": False,
        "schema": {"type": "array", "items": {"$ref": REF.format(name="Status")}, "minItems": 1},
    }
    cursor_param = {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "the next_cursor of the previous page; absent for the first page. "
        "It is the position after which the page starts, `<created_at>~<id>`",
        "schema": {"type": "string", "pattern": f"^{CURSOR_PATTERN}$"},
    }
    days_param = {
        "name": "older_than_days",
        "in": "query",
        "required": False,
        "description": "age in days (by last change) of the failed recordings to delete; "
        "default: the server's --cleanup-failed-days (required when that is 0)",
        "schema": {"type": "number", "minimum": 0, "maximum": params.MAX_DAYS},
    }
    return {
        f"{prefix}/recordings": {
            "get": {
                "operationId": "listRecordings",
                "summary": "The caller's recordings, newest first, a page at a time",
                "parameters": [status_param, _limit(params.DEFAULT_LIMIT), cursor_param],
                "responses": {
                    "200": _json(schema_of["RecordingPage"], "one page"),
                    "400": _bad_request("status, limit or cursor"),
                    "401": _UNAUTHORIZED,
                },
            },
        },
        f"{prefix}/recordings/{{upload_id}}": {
            "parameters": [_UPLOAD_ID_PARAM],
            "get": {
                "operationId": "getRecording",
                "summary": "One recording: status, upload progress, checksum, processing results",
                "responses": {
                    "200": _json(schema_of["RecordingDetail"], "the recording"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            },
            "delete": {
                "operationId": "deleteRecording",
                "summary": "Delete the recording and its bytes (like a tus DELETE of its upload)",
                "responses": {
                    "204": {"description": "deleted"},
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                    "405": _text("deleting is switched off on this server (--disable-extensions termination)"),
                    "423": _text("a request writing the upload did not let go in time; retry"),
                    "501": _text("the storage backend cannot delete uploads"),
                },
            },
        },
        f"{prefix}/recordings/{{upload_id}}/download-url": {
            "parameters": [_UPLOAD_ID_PARAM],
            "post": {
                "operationId": "createDownloadUrl",
                "summary": "A signed link that downloads the recording's upload without a token (for <audio src>), "
                "valid for the server's --download-url-ttl; GET it with or without Range; 403 once expired or altered",
                "responses": {
                    "200": _json(schema_of["DownloadUrl"], "the link and its expiry"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                    "410": _text("the upload expired unfinished"),
                },
            },
        },
        f"{prefix}/queue": {
            "get": {
                "operationId": "getQueue",
                "summary": "The caller's processing jobs that are queued or running, soonest first",
                "parameters": [_limit(params.DEFAULT_QUEUE_LIMIT)],
                "responses": {
                    "200": _json(schema_of["Queue"], "the jobs"),
                    "400": _bad_request("limit"),
                    "401": _UNAUTHORIZED,
                },
            },
        },
        f"{prefix}/sync": {
            "post": {
                "operationId": "syncRecordings",
                "summary": "Queue the caller's failed recordings, and those whose job hung, for another round",
                "responses": {
                    "200": _json(schema_of["SyncResult"], "the recordings queued again"),
                    "401": _UNAUTHORIZED,
                },
            },
        },
        f"{prefix}/stats": {
            "get": {
                "operationId": "getStats",
                "summary": "Count and stored bytes of the caller's recordings per status; quota used and left",
                "responses": {
                    "200": _json(schema_of["Stats"], "the statistics"),
                    "401": _UNAUTHORIZED,
                },
            },
        },
        f"{prefix}/cleanup": {
            "post": {
                "operationId": "cleanupFailedRecordings",
                "summary": "Delete the caller's failed recordings older than a number of days (never others)",
                "parameters": [days_param],
                "responses": {
                    "200": _json(schema_of["CleanupResult"], "the recordings deleted"),
                    "400": _bad_request("older_than_days"),
                    "401": _UNAUTHORIZED,
                    "405": _text("deleting is switched off on this server (--disable-extensions termination)"),
                },
            },
        },
        f"{prefix}/openapi.json": {
            "get": {
                "operationId": "getOpenApiDocument",
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
            },
        },
    }


def _tighten(components: dict[str, Any]) -> None:
    """Every property is always sent: say so (see the module docstring). Others may come later."""
    for schema in components.values():
        properties = schema.get("properties")
        if schema.get("type") == "object" and properties is not None:
            schema["required"] = list(properties)


def _operations(paths: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in paths.values() for method, op in item.items() if method != "parameters"]


def query_parameters(document: dict[str, Any], path: str, method: str) -> frozenset[str]:
    """The names of the query parameters the document lists for one operation."""
    item = document["paths"][path]
    listed = [*item.get("parameters", []), *item[method].get("parameters", [])]
    return frozenset(p["name"] for p in listed if p["in"] == "query")


def build_document(prefix: str = "/api/v1") -> dict[str, Any]:
    refs, components = msgspec.json.schema_components(_RESPONSE_TYPES, ref_template=REF)
    _tighten(components)
    components["Problem"] = _PROBLEM
    # msgspec types dict keys as plain strings; here they are statuses.
    components["Stats"]["properties"]["by_status"]["propertyNames"] = {"$ref": REF.format(name="Status")}
    schema_of = {cls.__name__: ref for cls, ref in zip(_RESPONSE_TYPES, refs, strict=True)}
    paths = _paths(prefix.rstrip("/"), schema_of)
    for operation in _operations(paths):
        # Every operation refuses query parameters it does not list (params.check_known).
        operation["responses"].setdefault("400", _bad_request("or unknown query parameter"))
        if operation.get("security") != []:
            for status, response in _EVERY_OPERATION.items():
                operation["responses"].setdefault(status, response)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "tusd-py Recordings API", "version": API_VERSION, "description": _DESCRIPTION},
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def encode_document(document: dict[str, Any]) -> bytes:
    return msgspec.json.encode(document)
