"""The one place that builds the server's parts from the flat Config: storage, locks, the tus
service, auth, hooks, quotas, the state database, the pipeline (``build_parts`` for all of them).

Nothing here starts anything: ``tusd_py/server/runtime.py`` starts and stops what this builds,
for ``serve`` (through the app) and for the ``sweep`` and ``cleanup`` commands alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from extensions import enabled_extensions
from storage_backends.base import DataStore
from tusd_py import host
from tusd_py.config.values import Config
from tusd_py.hooks import HookDispatcher, HookListener, HookRegistry, HookType, ProgressThrottle, WebhookConfig
from tusd_py.hooks.context import StoppedUploads
from tusd_py.locks.locker import InProcessLocker, Locker
from tusd_py.pipeline.analysis import CompressionPolicy
from tusd_py.pipeline.config import PipelineConfig
from tusd_py.pipeline.listener import PipelineListener
from tusd_py.pipeline.models import Recording
from tusd_py.pipeline.service import Pipeline, default_store
from tusd_py.pipeline.steps import DigestPublisher
from tusd_py.pipeline.worker import RetryPolicy
from tusd_py.quotas.ledger import MemoryQuotaLedger, QuotaLedger, QuotaLimits, QuotaListener
from tusd_py.telemetry.metrics import MetricsListener
from tusd_py.uploads.operations import Uploads
from tusd_py.uploads.tus_service import TusService

if TYPE_CHECKING:
    from tusd_py.auth import AuthConfig, TokenVerifier
    from tusd_py.database.connection import Database
    from tusd_py.hooks.delivery import OutboxDelivery
    from tusd_py.hooks.tusd_format import ResponsePatch


@dataclass
class Parts:
    """Everything ``serve``, ``sweep`` and ``cleanup`` run on, built and wired, nothing started."""

    config: Config
    service: TusService
    uploads: Uploads
    pipeline: Pipeline
    #: Tells the pipeline (and the hook outbox with it) what happens to uploads; drained at stop.
    pipeline_listener: PipelineListener
    #: The durable webhook deliverer (None without webhooks).
    outbox: OutboxDelivery | None
    #: The shared PostgreSQL state database of ``--database-url`` (None: SQLite, one process).
    database: Database | None
    #: Uploads a tusd-format post-receive reply stopped, with the answer for the PATCH it cut.
    stopped: StoppedUploads


def build_parts(
    config: Config,
    *,
    store: DataStore | None = None,
    locker: Locker | None = None,
    hooks: HookRegistry | None = None,
    serving: bool = True,
) -> Parts:
    """Build and wire every part from ``config``; an embedder may pass its own store, locker and
    Python hook callables. ``serving`` is False for a one-shot command (sweep, cleanup)."""
    database = build_database(config)
    service = build_service(config, store=store, locker=locker, hooks=hooks, database=database, serving=serving)
    pipeline = build_pipeline(config, service.store, publish_digest=service.record_digest, database=database)
    stopped = StoppedUploads()
    uploads = Uploads(service)
    outbox = build_outbox(config, service.hooks, pipeline, stop_upload=_stopper(uploads, stopped))
    wire_process_callables(service.hooks, pipeline)
    pipeline_listener = PipelineListener(pipeline, reconciler=service.reconciler)
    service.lifecycle.add(pipeline_listener)
    return Parts(config, service, uploads, pipeline, pipeline_listener, outbox, database, stopped)


def _stopper(uploads: Uploads, stopped: StoppedUploads) -> Callable[[str, ResponsePatch], Awaitable[None]]:
    """tusd's StopUpload: the operation layer's stop (no pre-terminate, as in tusd); a PATCH this
    cuts is answered with the hook's response."""

    async def stop(upload_id: str, answer: ResponsePatch) -> None:
        stopped.remember(upload_id, answer)
        await uploads.stop(upload_id)

    return stop


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
    serving: bool = True,
) -> TusService:
    store = store or build_store(config)
    service = TusService(
        config=config,
        store=store,
        locker=locker or build_locker(config),
        extensions=enabled_extensions(store, config.disabled_extensions),
        hooks=build_hooks(config, hooks),
        quotas=build_quotas(config, database, serving=serving),
    )
    if database is not None:
        service.admission_checks.append(database.check)  # 503 at once while PostgreSQL is known to be down
    if service.quotas is not None:
        service.lifecycle.add(QuotaListener(service.quotas, service.reconciler))
    if service.hooks is not None:
        service.lifecycle.add(HookListener(service.hooks))
    service.lifecycle.add(MetricsListener())
    return service


def auth_config(config: Config) -> AuthConfig:
    from tusd_py.auth import AuthConfig  # pyjwt and cryptography cost ~9 MiB: loaded only with auth on

    algorithms = config.jwt_algorithms or (["HS256"] if config.jwt_secret else ["RS256"])
    return AuthConfig(
        enabled=config.auth_enabled,
        algorithms=algorithms,
        secret=config.jwt_secret,
        public_key_path=config.jwt_public_key,
        jwks_path=config.jwks,
        jwks_url=config.jwks_url,
        jwks_ca_file=config.jwks_ca_file,
        jwks_min_refresh=config.jwks_min_refresh,
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
        user_claim=config.jwt_user_claim,
        leeway_seconds=config.jwt_leeway,
    )


def token_verifier_for(config: Config) -> TokenVerifier | None:
    """The JWT verifier the gate uses, or None when auth is off. Raises AuthConfigError for an
    unsafe or incomplete configuration: the server must not start with it."""
    if not config.auth_enabled:
        return None
    from tusd_py.auth import TokenVerifier

    return TokenVerifier(auth_config(config))


# tusd's -hooks-enabled-events default: pre-finish and pre-terminate (and our post-process) are opt-in.
TUSD_DEFAULT_EVENTS = [
    HookType.PRE_CREATE,
    HookType.POST_CREATE,
    HookType.POST_RECEIVE,
    HookType.POST_TERMINATE,
    HookType.POST_FINISH,
]


def build_hooks(config: Config, registry: HookRegistry | None) -> HookDispatcher | None:
    webhooks = []
    if config.hooks_url:
        default = TUSD_DEFAULT_EVENTS if config.hooks_format == "tusd" else list(HookType)
        events = [HookType(name) for name in config.hooks_events] if config.hooks_events else default
        webhooks.append(
            WebhookConfig(
                url=config.hooks_url,
                secret=config.hooks_secret,
                timeout=config.hooks_timeout,
                retries=config.hooks_retries,
                hooks=events,
                fail_closed=not config.hooks_fail_open,
                format=config.hooks_format,
                forward_headers=list(config.hooks_forward_headers),
            )
        )
    if registry is None and not webhooks:
        return None
    return HookDispatcher(registry, webhooks, throttle=ProgressThrottle(config.progress_hooks_interval))


def build_outbox(
    config: Config,
    hooks: HookDispatcher | None,
    pipeline: Pipeline,
    stop_upload: Callable[[str, ResponsePatch], Awaitable[None]] | None = None,
) -> OutboxDelivery | None:
    """Make post-* webhooks durable: events go into the state store with the change they report
    (the pipeline's transactions) and a deliverer sends them. None without webhooks."""
    if hooks is None or not hooks.webhook_configs:
        return None
    from tusd_py.hooks.delivery import OutboxDelivery
    from tusd_py.hooks.outbox import HookOutbox

    outbox = HookOutbox(
        hooks.webhook_configs, pipeline.workers.data_store, progress_interval=config.progress_hooks_interval
    )
    delivery = OutboxDelivery(
        pipeline.store,
        hooks.webhook_configs,
        retention=config.hooks_retention,
        backoff_max=min(config.hooks_backoff_max, config.hooks_retention),
        stop_upload=stop_upload,
    )
    hooks.durable = True
    pipeline.events = outbox.events
    pipeline.workers.outcome_events = outbox.process_events
    pipeline.on_events = pipeline.workers.on_events = delivery.notify
    return delivery


def wire_process_callables(hooks: HookDispatcher | None, pipeline: Pipeline) -> None:
    """post-process Python callables: told once the worker recorded a job's final state."""
    if hooks is None or not hooks.registry.hooks(HookType.POST_PROCESS):
        return
    from tusd_py.hooks.context import event_here
    from tusd_py.hooks.events import ProcessOutcome
    from tusd_py.hooks.outbox import processed_upload

    data_store = pipeline.workers.data_store

    async def processed(recording: Recording, status: str, results: dict[str, Any], error: str | None) -> None:
        info = await processed_upload(data_store, recording)
        outcome = ProcessOutcome(status=status, results=results, error=error)
        event = event_here(HookType.POST_PROCESS, info, storage=data_store.location(info.id), process=outcome)
        hooks.emit(HookType.POST_PROCESS, event)

    pipeline.workers.outcome_listener = processed


def build_database(config: Config) -> Database | None:
    """The shared PostgreSQL state database of ``--database-url`` (None: SQLite and memory, one process)."""
    if not config.database_url:
        return None
    from tusd_py.database.connection import Database  # asyncpg is loaded only when it is used

    return Database(config.database_url)


def build_pipeline(
    config: Config,
    store: DataStore,
    publish_digest: DigestPublisher | None = None,
    database: Database | None = None,
) -> Pipeline:
    pipeline_config = PipelineConfig(
        db_path=config.state_db_path,
        lease_seconds=config.job_lease,
        concurrency=max(1, config.workers),
        shared=config.processes > 1,  # the SQLite file is shared by the workers: jobs claimed with leases
        retry=RetryPolicy(max_attempts=config.job_attempts, base_delay=config.job_retry_delay),
        compression=CompressionPolicy(
            threshold_bytes=config.compression_threshold, target_bitrate_bps=config.voice_bitrate
        ),
    )
    # One pool for the recordings and the quota ledger: the same database, one set of connections.
    recordings = None if database is None else default_store(pipeline_config, database=database)
    return Pipeline(pipeline_config, store, store=recordings, publish_digest=publish_digest)


def build_quotas(config: Config, database: Database | None = None, *, serving: bool = True) -> QuotaLedger | None:
    limits = quota_limits(config)
    # The PostgreSQL ledger outlives every process: a one-shot command (it takes no auth flags, it
    # serves nobody) still gives back the claims of what it deletes, or they stay spent for good.
    if database is not None and (config.auth_enabled or not serving):
        from tusd_py.quotas.postgres import PostgresQuotaLedger

        return PostgresQuotaLedger(limits, database)
    if not config.auth_enabled:
        return None  # quotas are per user; without auth there are no users to count
    return host.shared_quota_ledger(limits) or MemoryQuotaLedger(limits)


def quota_limits(config: Config) -> QuotaLimits:
    return QuotaLimits(max_bytes=config.quota_bytes or None, max_unfinished=config.quota_unfinished or None)
