"""Fixtures for the Recordings API tests: real apps, real WAV uploads, and every response checked
against the OpenAPI document the app itself serves."""

from __future__ import annotations

import asyncio
import io
import math
import struct
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator

from tests.client import tus
from tests.client.tus import TUS, id_of, metadata
from tests.tokens import bearer
from tusd_py.config.values import Config

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


def wav_bytes(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A 16-bit mono sine, written with the stdlib ``wave`` module."""
    frames = b"".join(
        struct.pack("<h", int(10000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return out.getvalue()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_store(request: pytest.FixtureRequest) -> dict[str, str]:
    """Config overrides for each state store in turn: SQLite (the default) and PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("database_url")}


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "storage_dir": str(tmp_path / "data"),
        "workers": 1,
        "job_retry_delay": 0.01,
        "job_attempts": 3,
        "sweep_interval": 0,
        "cleanup_interval": 0,
        "lock_timeout": 1.0,
        **overrides,
    }
    return Config(**settings)


def strict_components(document: dict[str, Any]) -> dict[str, Any]:
    """The document's schemas with no field beyond those listed: the published schemas let a later
    release add fields, but the code must send exactly what the document lists today."""
    schemas = {
        name: {**schema, "additionalProperties": False} if schema.get("properties") is not None else schema
        for name, schema in document["components"]["schemas"].items()
    }
    return {**document["components"], "schemas": schemas}


class Api:
    """Calls the Recordings API and checks each answer against the app's own OpenAPI document.

        ``template`` is the documented path (``/api/recordings/{upload_id}``): the status must be one
        the document lists for that operation, the Content-Type the one it lists for that status, and
        a JSON body must validate against its schema. Returns the decoded JSON, or for an error (an
    RFC 9457 problem document) its ``detail`` with a newline, as a plain-text reason would read.
    """

    def __init__(self, client: Client, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.client = client
        self.document = document
        self.headers = headers or {}

    def as_user(self, user: str) -> Api:
        return Api(self.client, self.document, bearer(user))

    async def call(
        self,
        method: str,
        template: str,
        *,
        expect: int = 200,
        params: dict[str, str] | list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        upload_id: str | None = None,
    ) -> Any:
        url = template if upload_id is None else template.format(upload_id=upload_id)
        resp = await self.client.request(method, url, params=params, headers={**self.headers, **(headers or {})})
        body = await resp.read()
        assert resp.status == expect, (resp.status, body[:300])
        operation = self.document["paths"][template][method.lower()]
        documented = operation["responses"].get(str(resp.status))
        assert documented is not None, f"{method} {template} answered {resp.status}, which is not documented"
        content = documented.get("content")
        if content is None:
            assert body == b"", body[:300]
            return None
        (media_type, spec), *_ = content.items()
        assert resp.content_type == media_type, (resp.content_type, media_type)
        if media_type == "text/plain":
            return body.decode()
        value = await resp.json(content_type=None)
        schema = {**spec["schema"], "components": strict_components(self.document)}
        errors = sorted(Draft202012Validator(schema).iter_errors(value), key=str)
        assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
        if media_type == "application/problem+json":
            # RFC 9457: the type names the error code; the tests read the reason, as tus sends it.
            assert value["type"] == "urn:tusd-py:problem:" + value["code"] and value["status"] == resp.status
            return value["detail"] + "\n"
        return value

    async def get(self, template: str, **kw: Any) -> Any:
        return await self.call("GET", template, **kw)

    async def post(self, template: str, **kw: Any) -> Any:
        return await self.call("POST", template, **kw)

    async def delete(self, template: str, **kw: Any) -> Any:
        return await self.call("DELETE", template, **kw)

    async def recording(self, upload_id: str, **kw: Any) -> Any:
        return await self.get("/api/recordings/{upload_id}", upload_id=upload_id, **kw)

    async def wait_for(self, upload_id: str, *statuses: str, within: float = 10.0) -> Any:
        """Poll the recording until it reaches one of ``statuses`` (bounded)."""
        deadline = time.monotonic() + within
        while True:
            rec = await self.recording(upload_id)
            if rec["status"] in statuses:
                return rec
            assert time.monotonic() < deadline, f"{upload_id} still {rec['status']} after {within} s: {rec}"
            await asyncio.sleep(0.02)


async def open_api(client: Client, user: str | None = None) -> Api:
    headers = bearer(user) if user else {}
    resp = await client.get("/api/openapi.json", headers=headers)
    assert resp.status == 200, await resp.text()
    return Api(client, await resp.json(), headers)


async def upload(client: Client, data: bytes, *, user: str | None = None, filename: str = "memo.wav") -> str:
    """A finished tus upload (POST, then PATCH in two pieces); returns its id."""
    meta = metadata(filename=filename, mode="recap", filetype="audio/wav")
    path = await tus.upload(client, data, auth=_auth(user), chunk=len(data) // 2 + 1, Upload_Metadata=meta)
    return id_of(path)


async def start_upload(client: Client, length: int, data: bytes = b"", *, user: str | None = None) -> str:
    """An unfinished tus upload of ``length`` bytes holding ``data``; returns its id."""
    return id_of(await tus.upload(client, data, auth=_auth(user), length=length))


async def tus_head(client: Client, upload_id: str, user: str | None = None) -> int:
    resp = await client.head(f"/files/{upload_id}", headers={**TUS, **_auth(user)})
    return resp.status


def _auth(user: str | None) -> dict[str, str]:
    return bearer(user) if user else {}


@pytest.fixture
def wav() -> bytes:
    return wav_bytes()
