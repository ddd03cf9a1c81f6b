"""HTTP: the tus handlers (``tus_handlers``), routing, the gate (who is calling), middlewares, body-free
interim responses, CORS, hooks' request scope, operational routes and downloads, and what is read
off a request for the operation layer (``requests``: the URLs the client sees, the body's verifier).

Layer 6: parses requests, calls the operation layer (``tusd_py.uploads``) and writes responses. May
import every layer below it; never ``tusd_py.server``.
"""
