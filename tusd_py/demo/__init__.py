"""The offline-first recorder page at ``/demo/`` (``tusd-py serve --demo``).

Static files only: ``static/`` holds the page, its stylesheet, its service worker (the app shell
offline), manifest and icon, ``static/build/`` the esbuild bundle of ``src/`` (tus-js-client
included), made by ``make demo`` and shipped as package data, so a wheel serves the page without
Node. The page talks to this server only: the tus endpoint and the Recordings API, with the token
the user types, at URLs relative to the page.
"""

from tusd_py.demo.routes import DEMO_PREFIX, add_demo_routes

__all__ = ["DEMO_PREFIX", "add_demo_routes"]
