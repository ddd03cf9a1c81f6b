"""Builds the optional parts of the server (auth, hooks, quotas, the state database) from the flat Config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage_backends.base import DataStore
from tusd_py.config import Config
from tusd_py.hooks import HookDispatcher, HookRegistry, HookType, WebhookConfig
from tusd_py.pipeline.analysis import CompressionPolicy
from tusd_py.pipeline.config import PipelineConfig
from tusd_py.pipeline.service import Pipeline
from tusd_py.pipeline.steps import DigestPublisher
from tusd_py.pipeline.worker import RetryPolicy
from tusd_py.quotas import MemoryQuotaLedger, QuotaLedger, QuotaLimits

if TYPE_CHECKING:
    from tusd_py.auth import AuthConfig, TokenVerifier
    from tusd_py.database.connection import Database
    from tusd_py.pipeline.store import RecordingStore


def auth_config(config: Config) -> AuthConfig:
    from tusd_py.auth import AuthConfig  # pyjwt and cryptography cost ~9 MiB: loaded only with auth on

    algorithms = config.jwt_algorithms or (["HS256"] if config.jwt_secret else ["RS256"])
    return AuthConfig(
        enabled=config.auth_enabled,
        algorithms=algorithms,
        secret=config.jwt_secret,
        public_key_path=config.jwt_public_key,
        jwks_path=config.jwks,
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


def build_hooks(config: Config, registry: HookRegistry | None) -> HookDispatcher | None:
    webhooks = []
    if config.hooks_url:
        events = [HookType(name) for name in config.hooks_events] if config.hooks_events else list(HookType)
        webhooks.append(
            WebhookConfig(
                url=config.hooks_url,
                secret=config.hooks_secret,
                timeout=config.hooks_timeout,
                retries=config.hooks_retries,
                hooks=events,
                fail_closed=not config.hooks_fail_open,
            )
        )
    if registry is None and not webhooks:
        return None
    return HookDispatcher(registry, webhooks)


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
    recordings: RecordingStore | None = None
    if database is not None:
        from tusd_py.pipeline.postgres_store import PostgresRecordingStore

        recordings = PostgresRecordingStore(database, lease_seconds=config.job_lease)
    return Pipeline(
        PipelineConfig(
            db_path=config.state_db_path,
            concurrency=max(1, config.workers),
            retry=RetryPolicy(max_attempts=config.job_attempts, base_delay=config.job_retry_delay),
            compression=CompressionPolicy(
                threshold_bytes=config.compression_threshold, target_bitrate_bps=config.voice_bitrate
            ),
        ),
        store,
        store=recordings,
        publish_digest=publish_digest,
    )


def build_quotas(config: Config, database: Database | None = None) -> QuotaLedger | None:
    if not config.auth_enabled:
        return None  # quotas are per user; without auth there are no users to count
    limits = QuotaLimits(max_bytes=config.quota_bytes or None, max_unfinished=config.quota_unfinished or None)
    if database is not None:
        from tusd_py.quotas_postgres import PostgresQuotaLedger

        return PostgresQuotaLedger(limits, database)
    return MemoryQuotaLedger(limits)
