"""A hook receiver written for tusd, from tusd's documentation (docs/_advanced-topics/hooks.md,
"Hook Requests and Responses" and "Common Uses", and its Python HTTP example), not for tusd-py.

It reads only tusd's request fields (``Type``, ``Event.Upload``, ``Event.HTTPRequest``) and answers
tusd's ``HookResponse``; the one thing it adds is checking the Standard Webhooks signature that
tusd-py sends on top. Its policy, per hook:

- pre-create: no ``filename`` in the metadata -> ``RejectUpload`` with a JSON 400; else
  ``ChangeFileInfo``: an ID ``prefix-<uuid>`` and metadata reduced to filename, creation time,
  project and keep (the docs' example keeps filename and creation time).
- pre-finish: a ``Link`` header for the client ("Sending Results to the Client").
- post-receive: an upload of project ``closed`` is stopped ("Interrupting Uploads").
- pre-terminate: an upload with metadata ``keep`` may not be deleted (``RejectTermination``).
- post-finish: logs where the file is ("Post-Processing Files").
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web


def refusal(message: str, flag: str) -> dict[str, Any]:
    """tusd's HookResponse for a refusal: a JSON 400 for the client, and ``flag`` set."""
    body = json.dumps({"message": message})
    return {
        "HTTPResponse": {"StatusCode": 400, "Body": body, "Header": {"Content-Type": "application/json"}},
        flag: True,
    }


class TusdReceiver:
    def __init__(self, secret: str | None) -> None:
        from standardwebhooks.webhooks import Webhook

        self.verifier = Webhook(secret) if secret is not None else None  # None: tusd's unsigned requests
        self.url = ""
        self.requests: list[dict[str, Any]] = []  # tusd hook requests, as received
        self.request_headers: list[dict[str, str]] = []
        self.log: list[str] = []
        self.hold_post_receive: asyncio.Event | None = None  # a test's hand on when post-receive answers
        self._changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.verifier is not None:
            self.verifier.verify(raw, dict(request.headers))  # tusd-py's signature, on top of tusd's format
        hook = json.loads(raw)
        self.requests.append(hook)
        self.request_headers.append(dict(request.headers))
        self._changed.set()  # arrived (the answer may still be held)
        kind = hook["Type"]
        upload = hook["Event"]["Upload"]
        http = hook["Event"]["HTTPRequest"]
        meta = upload["MetaData"]
        self.log.append(f"{kind} {http['Method']} {http['URI']} id={upload['ID']!r} offset={upload['Offset']}")
        response: dict[str, Any] = {}
        if kind == "pre-create":
            if "filename" not in meta:
                response = refusal("no filename provided", "RejectUpload")
            else:
                kept = {"filename": meta["filename"], "creation_time": time.ctime()}
                kept.update({key: meta[key] for key in ("project", "keep") if key in meta})
                response = {"ChangeFileInfo": {"ID": f"prefix-{uuid.uuid4()}", "MetaData": kept}}
        elif kind == "pre-finish":
            response = {
                "HTTPResponse": {"Header": {"Link": f'<https://example.com/files/{upload["ID"]}>; rel="related"'}}
            }
        elif kind == "post-receive" and meta.get("project") == "closed":
            if self.hold_post_receive is not None:
                await self.hold_post_receive.wait()
            response = refusal("associated project is no longer available", "StopUpload")
        elif kind == "pre-terminate" and "keep" in meta:
            response = {
                "HTTPResponse": {"StatusCode": 409, "Body": "this upload is kept for the audit\n"},
                "RejectTermination": True,
            }
        elif kind == "post-finish":
            self.log.append(
                f"Upload {upload['ID']} ({upload['Size']} bytes) is finished. Find the file at: {upload['Storage']}"
            )
        if response:
            self.log.append(f"  -> {json.dumps(response)}")
        self._changed.set()
        return web.json_response(response)

    def of(self, kind: str, upload_id: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests
            if r["Type"] == kind and (upload_id is None or r["Event"]["Upload"]["ID"] == upload_id)
        ]

    async def wait_for(self, kind: str, upload_id: str, within: float = 30.0) -> dict[str, Any]:
        """The first ``kind`` request about ``upload_id``, waiting for it to arrive (bounded)."""
        async with asyncio.timeout(within):
            while not self.of(kind, upload_id):
                self._changed.clear()
                await self._changed.wait()
        return self.of(kind, upload_id)[0]
