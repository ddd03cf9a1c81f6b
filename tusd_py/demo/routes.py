"""Mounting the demo page: a fixed list of files, a small JSON config, strict browser headers.

The files are public with auth on (they hold no secrets; the page asks the user for a token): the
routes are named ``public.demo*``, which is how the gate (tusd_py.http.gate) knows to let them through.
Every URL the server gives the page (the redirect, the config) is relative to where the page is
served, so the page works unchanged behind a proxy that mounts the server under a prefix.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from aiohttp import web

from tusd_py.config.values import Config
from tusd_py.recordings.routes import openapi_path

#: Every path of the demo starts with this; none of them needs a token.
DEMO_PREFIX = "/demo/"
STATIC_DIR = Path(__file__).parent / "static"
BUNDLE = "build/app.js"

# The page's own files: nothing else under STATIC_DIR is served, so no path is resolved from the URL.
_FILES: dict[str, str] = {
    "": "text/html",
    "index.html": "text/html",
    "app.css": "text/css",
    BUNDLE: "text/javascript",
    "build/app.js.map": "application/json",
    "build/app.js.LEGAL.txt": "text/plain",  # the bundled libraries' licences
    # The service worker sits at the top of the page's directory: its scope is the whole page.
    "sw.js": "text/javascript",
    "manifest.webmanifest": "application/manifest+json",
    "icon.svg": "image/svg+xml",
}
_SOURCES = {"": "index.html"}

# Everything from this origin, nothing from anywhere else (no CDN, no third-party beacon), and
# blob: for playing the recordings kept in IndexedDB.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "media-src 'self' blob:; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is small and changes with each build; a stale bundle against a newer server is worse.
    "Cache-Control": "no-cache",
}

_CONFIG_KEY = web.AppKey("demo_config", Config)


def add_demo_routes(app: web.Application, config: Config) -> None:
    app[_CONFIG_KEY] = config
    app.router.add_get(DEMO_PREFIX.rstrip("/"), _redirect, name="public.demo-redirect")
    app.router.add_get(DEMO_PREFIX + "config.json", _page_config, name="public.demo-config")
    app.router.add_get(DEMO_PREFIX + "{name:.*}", _static, name="public.demo-files")


def relative_to_page(path: str) -> str:
    """``path`` (absolute on this server) as a URL relative to the page's directory, ``/demo/``.

    The browser resolves it against the URL it loaded the page from, so ``/files/`` reached as
    ``../files/`` from ``/uploads/demo/`` is ``/uploads/files/``: the proxy's prefix is kept.
    """
    relative = posixpath.relpath(path, DEMO_PREFIX)
    return relative + "/" if path.endswith("/") and not relative.endswith("/") else relative


async def _redirect(request: web.Request) -> web.StreamResponse:
    # Relative (RFC 9110 allows it): /demo -> /demo/, and /uploads/demo -> /uploads/demo/ behind a proxy.
    raise web.HTTPMovedPermanently(DEMO_PREFIX.strip("/").rsplit("/", 1)[-1] + "/")


async def _page_config(request: web.Request) -> web.Response:
    """What the page needs to know about this server: where to upload and whether to ask for a token."""
    config = request.app[_CONFIG_KEY]
    api_prefix = openapi_path().rsplit("/", 1)[0]
    body = {
        "tus_endpoint": relative_to_page(config.base_path),
        "api_prefix": relative_to_page(api_prefix),
        "auth": config.auth_enabled,
    }
    return web.json_response(body, headers=_HEADERS)


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    content_type = _FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound(text="no such demo file\n")
    path = STATIC_DIR / _SOURCES.get(name, name)
    if not path.is_file():
        # A source checkout without `make demo`: say how to fix it rather than serve a broken page.
        missing = name or "index.html"
        raise web.HTTPServiceUnavailable(text=f"the demo is not built ({missing} missing): run `make demo`\n")
    return web.FileResponse(path, headers={**_HEADERS, "Content-Type": content_type})
