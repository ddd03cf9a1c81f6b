"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec
import structlog
from aiohttp import web

from extensions import enabled_extensions
from extensions.expiration import SweepReport
from storage_backends.base import DataStore
from tusd_py import host
from tusd_py.config.values import Config
from tusd_py.hooks import HookListener, HookRegistry
from tusd_py.hooks.context import StoppedUploads
from tusd_py.hooks.delivery import OutboxDelivery
from tusd_py.hooks.tusd_format import ResponsePatch
from tusd_py.http.downloads import add_signed_downloads
from tusd_py.http.gate import gate_middleware
from tusd_py.http.hook_scope import hook_scope_middleware
from tusd_py.http.middlewares import add_response_headers, cors_middleware, error_responses, request_context
from tusd_py.http.ops_routes import add_ops_routes
from tusd_py.http.routing import Dispatcher
from tusd_py.locks.locker import CLEANUP_LOCK, SWEEP_LOCK, InProcessLocker, Locker, LockUnavailable, UploadLocked
from tusd_py.pipeline.listener import PipelineListener
from tusd_py.pipeline.service import Pipeline
from tusd_py.quotas.ledger import QuotaListener
from tusd_py.recordings.routes import API_PREFIX, LEGACY_API_PREFIX, add_recordings_routes
from tusd_py.server.wiring import (
    build_database,
    build_hooks,
    build_outbox,
    build_pipeline,
    build_quotas,
    token_verifier_for,
    wire_process_callables,
)
from tusd_py.telemetry.metrics import MetricsListener
from tusd_py.uploads.actor import SERVER
from tusd_py.uploads.cleanup import cleanup_failed
from tusd_py.uploads.operations import Uploads
from tusd_py.uploads.tus_service import TusService

if TYPE_CHECKING:
    from tusd_py.database.connection import Database  # asyncpg is imported only with --database-url

log = structlog.get_logger(__name__)

SERVICE_KEY = web.AppKey("tus_service", TusService)
UPLOADS_KEY = web.AppKey("uploads", Uploads)
PIPELINE_KEY = web.AppKey("pipeline", Pipeline)
_PIPELINE_LISTENER_KEY = web.AppKey("pipeline_listener", PipelineListener)
OUTBOX_KEY = web.AppKey("webhook_outbox", OutboxDelivery)


class _BackgroundTasks:
    """Tasks started with the app and cancelled with it."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


_BACKGROUND_KEY = web.AppKey("background_tasks", _BackgroundTasks)


def build_store(config: Config) -> DataStore:
    if config.storage == "filesystem":
        from storage_backends.filesystem import FileStore

        return FileStore(config.storage_dir, fsync=config.fsync)
    from storage_backends.s3 import S3Store
    from storage_backends.s3_config import S3Config

    assert config.s3_bucket is not None  # Config refuses s3 without a bucket
    s3 = S3Config(
        bucket=config.s3_bucket,
        prefix=config.s3_prefix,
        endpoint_url=config.s3_endpoint,
        region=config.s3_region,
        path_style=config.s3_path_style,
        part_size=config.s3_part_size,
        part_concurrency=config.s3_part_concurrency,
        # One process with the in-process locker is the prefix's only writer (several processes
        # or instances need --redis-url: docs/scaling.md; --processes N shares the prefix).
        sole_writer=config.redis_url is None and config.processes <= 1,
    )
    if config.max_size:  # parts are sized so that 10,000 of them hold the largest allowed upload
        s3 = msgspec.structs.replace(s3, max_upload_size=config.max_size)
    return S3Store(s3)


def build_locker(config: Config) -> Locker:
    """Upload locks in this process, shared by the workers of ``--processes N`` through their
    supervisor (tusd_py/host/), or shared through Redis with ``--redis-url``."""
    if config.redis_url is None:
        return host.shared_locker(config) or InProcessLocker(config.lock_timeout)
    from tusd_py.locks.redis_locker import RedisLocker

    return RedisLocker(config.redis_url, timeout=config.lock_timeout, lease=config.redis_lease)


def build_service(
    config: Config,
    *,
    store: DataStore | None = None,
    locker: Locker | None = None,
    hooks: HookRegistry | None = None,
    database: Database | None = None,
) -> TusService:
    store = store or build_store(config)
    service = TusService(
        config=config,
        store=store,
        locker=locker or build_locker(config),
        extensions=enabled_extensions(store, config.disabled_extensions),
        hooks=build_hooks(config, hooks),
        quotas=build_quotas(config, database),
    )
    if database is not None:
        service.admission_checks.append(database.check)  # 503 at once while PostgreSQL is known to be down
    if service.quotas is not None:
        service.lifecycle.add(QuotaListener(service.quotas, service.reconciler))
    if service.hooks is not None:
        service.lifecycle.add(HookListener(service.hooks))
    service.lifecycle.add(MetricsListener())
    return service


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
    database = build_database(config)
    service = build_service(config, store=store, locker=locker, hooks=hooks, database=database)
    pipeline = build_pipeline(config, service.store, publish_digest=service.record_digest, database=database)
    stopped = StoppedUploads()
    uploads = Uploads(service)
    outbox = build_outbox(config, service.hooks, pipeline, stop_upload=_stopper(uploads, stopped))
    wire_process_callables(service.hooks, pipeline)
    pipeline_listener = PipelineListener(pipeline, reconciler=service.reconciler)
    service.lifecycle.add(pipeline_listener)
    # The gate comes after the error mapping (its refusals are plain-text errors like any other)
    # and after CORS (a browser must be able to read a 401).
    middlewares = [request_context, cors_middleware(config), error_responses, gate_middleware(verifier)]
    if service.hooks is not None:
        # Outside the error mapping: a tusd-format hook's refusal replaces the error response.
        middlewares.insert(2, hook_scope_middleware(config.hooks_forward_headers, stopped))
    app = web.Application(middlewares=middlewares)
    if outbox is not None:
        app[OUTBOX_KEY] = outbox
    app[SERVICE_KEY] = service
    app[UPLOADS_KEY] = uploads
    app[PIPELINE_KEY] = pipeline
    app[_PIPELINE_LISTENER_KEY] = pipeline_listener
    app[_BACKGROUND_KEY] = _BackgroundTasks()
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
    add_ops_routes(app, service, pipeline)
    app.on_response_prepare.append(add_response_headers)
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    if verifier is not None and verifier.remote is not None:
        remote = verifier.remote

        async def fetch_keys(_: web.Application) -> None:
            await remote.start()

        async def close_keys(_: web.Application) -> None:
            await remote.close()

        app.on_startup.append(fetch_keys)
        app.on_cleanup.append(close_keys)
    return app


def _stopper(uploads: Uploads, stopped: StoppedUploads) -> Callable[[str, ResponsePatch], Awaitable[None]]:
    """tusd's StopUpload: the operation layer's stop (no pre-terminate, as in tusd); a PATCH this
    cuts is answered with the hook's response."""

    async def stop(upload_id: str, answer: ResponsePatch) -> None:
        stopped.remember(upload_id, answer)
        await uploads.stop(upload_id)

    return stop


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _start(app: web.Application) -> None:
    service = app[SERVICE_KEY]
    try:
        await service.locker.start()
        await service.store.start()
        if service.quotas is not None:
            await service.quotas.open()
            await service.quotas.rebuild(service.store)
        await app[PIPELINE_KEY].start(workers=service.config.workers > 0)
        if OUTBOX_KEY in app:
            await app[OUTBOX_KEY].start()  # rows left by an earlier run (or another instance) go out now
    except BaseException:
        # aiohttp runs no on_cleanup after a failed on_startup: close what opened, or an S3
        # client is left to warn "Unclosed client session" after the start-up error.
        await app[PIPELINE_KEY].stop()
        if service.quotas is not None:
            await service.quotas.close()
        await service.store.close()
        await service.locker.close()
        raise
    app[_BACKGROUND_KEY].start(asyncio.create_task(service.reconciler.run(), name="reconciler"))
    uploads = app[UPLOADS_KEY]
    app[_BACKGROUND_KEY].start(asyncio.create_task(_recover(uploads, app[PIPELINE_KEY])))
    if service.has_extension("expiration") and service.config.sweep_interval > 0:
        app[_BACKGROUND_KEY].start(asyncio.create_task(_sweep_periodically(uploads)))
    if service.config.cleanup_failed_days > 0 and service.config.cleanup_interval > 0:
        app[_BACKGROUND_KEY].start(asyncio.create_task(_cleanup_periodically(uploads, app[PIPELINE_KEY])))


async def _cleanup_periodically(uploads: Uploads, pipeline: Pipeline) -> None:
    service = uploads.service
    while True:
        await asyncio.sleep(service.config.cleanup_interval)
        try:
            async with service.locker.try_lock(CLEANUP_LOCK):  # one process or instance per round
                await cleanup_failed(uploads, SERVER, pipeline, service.config.cleanup_failed_days)
        except UploadLocked:
            log.debug("cleanup of failed recordings skipped: another process is running it")
        except LockUnavailable as exc:  # Redis is away: the next run does it
            log.warning("cleanup of failed recordings postponed", reason=exc.reason)
        except Exception:
            log.exception("cleanup of failed recordings failed")


async def sweep_once_shared(uploads: Uploads) -> SweepReport | None:
    """One expiration sweep, unless another process or instance on the shared locker runs one (None)."""
    from extensions.expiration import sweep

    try:
        async with uploads.service.locker.try_lock(SWEEP_LOCK):
            return await sweep(uploads)
    except UploadLocked:
        log.debug("expiration sweep skipped: another process is sweeping")
        return None


async def _sweep_periodically(uploads: Uploads) -> None:
    while True:
        await asyncio.sleep(uploads.service.config.sweep_interval)
        try:
            report = await sweep_once_shared(uploads)
        except LockUnavailable as exc:  # Redis is away: the next sweep does it
            log.warning("expiration sweep postponed", reason=exc.reason)
            continue
        except Exception:
            log.exception("expiration sweep failed")
            continue
        if report is not None and (report.expired or report.orphans):
            log.info("expiration sweep", expired=report.expired, busy=report.skipped_busy, orphans=report.orphans)


async def _recover(uploads: Uploads, pipeline: Pipeline) -> None:
    try:
        count = await uploads.recover()
        recorded = await uploads.record_lost_finishes(pipeline)
    except Exception:
        log.exception("recovery of unfinished uploads failed")
        return
    if count:
        log.info("finished uploads left unfinished by a crash", count=count)
    if recorded:
        log.info("finishes recorded that a crash lost before the pipeline saw them", count=recorded)


async def _stop(app: web.Application) -> None:
    for task in list(app[_BACKGROUND_KEY].tasks):
        task.cancel()
    service = app[SERVICE_KEY]
    await app[_PIPELINE_LISTENER_KEY].drain()  # progress updates still queued land before the store closes
    await service.reconciler.drain(within=min(5.0, service.config.shutdown_timeout))
    if OUTBOX_KEY in app:
        # Undelivered rows stay in the state store and go out after the next start.
        await app[OUTBOX_KEY].stop(grace=service.config.shutdown_timeout)
    await app[PIPELINE_KEY].stop()  # a job finishing now still writes its post-process event
    if service.quotas is not None:
        await service.quotas.close()
    if service.hooks is not None:
        await service.hooks.drain(timeout=service.config.shutdown_timeout)
    await service.store.close()
    await service.locker.close()
