"""The aiohttp application factory: middlewares, named routes, and the server's parts started and
stopped with the app (``tusd_py/server/runtime.py``, one ``cleanup_ctx`` entry)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from storage_backends.base import DataStore
from tusd_py.config.values import Config
from tusd_py.hooks import HookRegistry
from tusd_py.hooks.delivery import OutboxDelivery
from tusd_py.http.downloads import add_signed_downloads
from tusd_py.http.gate import gate_middleware
from tusd_py.http.hook_scope import hook_scope_middleware
from tusd_py.http.middlewares import add_response_headers, cors_middleware, error_responses, request_context
from tusd_py.http.ops_routes import add_ops_routes
from tusd_py.http.routing import Dispatcher
from tusd_py.locks.locker import Locker
from tusd_py.pipeline.service import Pipeline
from tusd_py.recordings.routes import API_PREFIX, LEGACY_API_PREFIX, add_recordings_routes
from tusd_py.server.runtime import Step, serving_steps, started
from tusd_py.server.wiring import build_parts, token_verifier_for
from tusd_py.uploads.operations import Uploads
from tusd_py.uploads.tus_service import TusService

log = structlog.get_logger(__name__)

SERVICE_KEY = web.AppKey("tus_service", TusService)
UPLOADS_KEY = web.AppKey("uploads", Uploads)
PIPELINE_KEY = web.AppKey("pipeline", Pipeline)
OUTBOX_KEY = web.AppKey("webhook_outbox", OutboxDelivery)


def make_app(
    config: Config,
    *,
    store: DataStore | None = None,
    locker: Locker | None = None,
    hooks: HookRegistry | None = None,
) -> web.Application:
    """The tus server as an aiohttp app. Embedders may pass a store, a shared locker, and a
    HookRegistry of Python callables (run alongside any configured webhook).

    Raises AuthConfigError when the JWT configuration is unsafe or incomplete.
    """
    verifier = token_verifier_for(config)
    if verifier is None:
        log.warning(
            "AUTHENTICATION IS OFF: anyone who can reach this server can upload, read and delete uploads. "
            "Give --jwt-secret, --jwt-public-key, --jwks or --jwks-url to turn it on."
        )
    parts = build_parts(config, store=store, locker=locker, hooks=hooks)
    service, uploads, pipeline = parts.service, parts.uploads, parts.pipeline
    # The gate comes after the error mapping (its refusals are plain-text errors like any other)
    # and after CORS (a browser must be able to read a 401).
    middlewares = [request_context, cors_middleware(config), error_responses, gate_middleware(verifier)]
    if service.hooks is not None:
        # Outside the error mapping: a tusd-format hook's refusal replaces the error response.
        middlewares.insert(2, hook_scope_middleware(config.hooks_forward_headers, parts.stopped))
    app = web.Application(middlewares=middlewares)
    if parts.outbox is not None:
        app[OUTBOX_KEY] = parts.outbox
    app[SERVICE_KEY] = service
    app[UPLOADS_KEY] = uploads
    app[PIPELINE_KEY] = pipeline
    dispatcher = Dispatcher(uploads)
    base = config.base_path
    # Route names tell the gate what a route is (tusd_py.http.gate): tus.* honour the method override,
    # public.* run without credentials.
    app.router.add_route("*", base, dispatcher.collection, name="tus.collection")
    if base != "/":
        app.router.add_route("*", base.rstrip("/"), dispatcher.collection, name="tus.collection-bare")
    app.router.add_route("*", base + "{upload_id}", dispatcher.upload, name="tus.upload")
    downloads = add_signed_downloads(app, uploads)
    add_recordings_routes(app, uploads, pipeline, downloads, API_PREFIX)
    add_recordings_routes(
        app, uploads, pipeline, downloads, LEGACY_API_PREFIX, successor=API_PREFIX
    )  # one more release
    if config.demo:
        from tusd_py.demo import add_demo_routes  # one hunk here; the demo lives in its own package

        add_demo_routes(app, config)
    app.router.add_get("/healthz", _health, name="public.healthz")
    steps = serving_steps(parts)
    if verifier is not None and verifier.remote is not None:
        remote = verifier.remote

        @contextlib.asynccontextmanager
        async def remote_keys() -> AsyncIterator[None]:
            try:
                await remote.start()  # the first fetch of the JWKS
                yield
            finally:
                await remote.close()

        steps.append(remote_keys)
    metrics_listener = add_ops_routes(app, service, pipeline)
    if metrics_listener is not None:
        steps.append(metrics_listener)  # /readyz there answers once everything is up
    app.on_response_prepare.append(add_response_headers)
    app.cleanup_ctx.append(_running(steps))
    return app


def _running(steps: list[Step]) -> Callable[[web.Application], AsyncIterator[None]]:
    """The app's one cleanup_ctx entry: every step started in order, stopped in reverse after the
    last request (a step that fails to start stops those before it, and the app does not start)."""

    async def running(_: web.Application) -> AsyncIterator[None]:
        async with started(steps):
            yield

    return running


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")
