"""The published OpenAPI document: valid OpenAPI 3.1, its schemas valid JSON Schema, and the same
routes as the app serves, both ways. (Every response the other tests get is validated against it
by ``conftest.Api``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import validate as validate_openapi

from tests.recordings.conftest import ClientFactory, make_config, open_api, strict_components
from tusd_py.http.downloads import SignedDownloads
from tusd_py.recordings.openapi import build_document
from tusd_py.recordings.routes import add_recordings_routes
from tusd_py.server.app import PIPELINE_KEY, UPLOADS_KEY, make_app

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS
    }


def served(app: web.Application, prefix: str) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(prefix + "/")
        and not route.resource.canonical.startswith("/api/v1/" if prefix == "/api" else "\0")
    }


async def test_the_served_document_is_valid_openapi_3_1(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    client = await aiohttp_client(make_app(make_config(tmp_path, workers=0)))
    api = await open_api(client)  # auth off: no token
    document = api.document
    assert document == build_document("/api")
    assert (await (await client.get("/api/v1/openapi.json")).json()) == build_document("/api/v1")
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises, naming the bad keyword


def test_every_served_route_is_documented_and_every_documented_one_served(tmp_path: Path) -> None:
    app = make_app(make_config(tmp_path, workers=0))
    assert served(app, "/api/v1") == documented(build_document("/api/v1"))
    assert len(served(app, "/api/v1")) == 9
    assert served(app, "/api") == documented(build_document("/api"))  # the deprecated prefix, one more release
    assert len(served(app, "/api")) == 9


async def test_the_old_prefix_says_it_is_deprecated_and_where_to_go(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await aiohttp_client(make_app(make_config(tmp_path, workers=0)))
    old = await client.get("/api/stats")
    assert old.status == 200 and old.headers["Deprecation"] == "true"
    assert old.headers["Link"] == '</api/v1/stats>; rel="successor-version"'
    new = await client.get("/api/v1/stats")
    assert new.status == 200 and "Deprecation" not in new.headers
    assert await new.json() == await old.json()


async def test_errors_are_problem_documents_named_by_code(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    client = await aiohttp_client(make_app(make_config(tmp_path, workers=0)))
    for path in ("/api/v1/recordings/" + "0" * 22, "/api/recordings/" + "0" * 22):
        resp = await client.get(path)
        assert resp.status == 404 and resp.content_type == "application/problem+json"
        problem = await resp.json(content_type=None)
        assert problem == {
            "type": "urn:tusd-py:problem:recording-not-found",
            "title": "Not Found",
            "status": 404,
            "detail": "recording not found",
            "code": "recording-not-found",
        }
    bad = await client.get("/api/v1/recordings?limit=0")
    assert (await bad.json(content_type=None))["code"] == "invalid-parameter"


def test_another_prefix_moves_routes_and_document_together(tmp_path: Path) -> None:
    app = make_app(make_config(tmp_path, workers=0))
    uploads = app[UPLOADS_KEY]
    add_recordings_routes(app, uploads, app[PIPELINE_KEY], SignedDownloads(uploads), "/v2/")
    assert served(app, "/v2") == documented(build_document("/v2"))
    assert all(path.startswith("/v2/") for path in build_document("/v2")["paths"])


def test_responses_are_held_to_every_field() -> None:
    """The check the other tests rely on bites: a missing field fails the published schema, and an
    extra one fails the tests' strict copy (the published one lets a later release add fields)."""
    document = build_document()
    schema = {"$ref": "#/components/schemas/SyncResult", "components": document["components"]}
    validator = Draft202012Validator(schema)
    validator.validate({"requeued": ["a"]})
    validator.validate({"requeued": [], "added_later": 1})  # a client must tolerate new fields
    with pytest.raises(ValidationError):
        validator.validate({})
    strict = Draft202012Validator({**schema, "components": strict_components(document)})
    with pytest.raises(ValidationError):
        strict.validate({"requeued": [], "extra": 1})
    stats = Draft202012Validator({"$ref": "#/components/schemas/Stats", "components": document["components"]})
    with pytest.raises(ValidationError):
        stats.validate(
            {"by_status": {"bogus": {"count": 0, "bytes": 0}}, "total_count": 0, "total_bytes": 0, "quota": None}
        )
