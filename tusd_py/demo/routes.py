"""Mounting the demo page: a fixed list of files, a small JSON config, strict browser headers.

The files are public with auth on (they hold no secrets; the page asks the user for a token): the
routes are named ``public.demo*``, which is how the gate (tusd_py.gate) knows to let them through.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from tusd_py.config import Config
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


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(DEMO_PREFIX)  # relative URLs in the page resolve against /demo/


async def _page_config(request: web.Request) -> web.Response:
    """What the page needs to know about this server: where to upload and whether to ask for a token."""
    config = request.app[_CONFIG_KEY]
    api_prefix = openapi_path().rsplit("/", 1)[0]
    body = {"tus_endpoint": config.base_path, "api_prefix": api_prefix, "auth": config.auth_enabled}
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
