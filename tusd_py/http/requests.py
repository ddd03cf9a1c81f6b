"""What the HTTP layer reads off a request for the operation layer, which never sees one: the URLs
the client sees (the collection's and an upload's, behind a proxy too) and the checker of its body.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from tusd_py.config.values import Config
from tusd_py.protocol.urls import external_base
from tusd_py.uploads.extension_api import Extension, Verifier


def collection_url(request: web.Request, config: Config) -> str:
    return external_base(
        scheme=request.scheme,
        host=request.host,
        base_path=config.base_path,
        headers=request.headers,
        behind_proxy=config.behind_proxy,
    )


def upload_url(request: web.Request, config: Config, upload_id: str) -> str:
    return collection_url(request, config) + upload_id


def body_verifier(request: web.Request, extensions: Sequence[Extension]) -> Verifier | None:
    """The first extension's checker for this request's bytes (checksum), or None; a malformed
    header is refused here, before any byte is read."""
    for ext in extensions:
        found = ext.verifier(request)
        if found is not None:
            return found
    return None
