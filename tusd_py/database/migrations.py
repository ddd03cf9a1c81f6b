"""The PostgreSQL schema as versioned migrations, applied at start under an advisory lock.

Each migration is applied once, in its own transaction, and recorded in ``schema_migrations``.
Several instances starting at once all call :func:`migrate`: the first takes the session-level
advisory lock and applies what is missing, the others wait on the lock, then find every version
recorded and apply nothing. Migrations only ever get appended; an applied one is never edited.

Timestamps are Unix seconds (``double precision``) from the instances' clocks, as in the SQLite
store, so both stores share the models and the tests' controllable clock. Leases compare those
clocks across instances: keep them NTP-synchronised (skew far below ``--job-lease``).
"""

from __future__ import annotations

import asyncpg
import structlog

log = structlog.get_logger(__name__)

#: ``pg_advisory_lock`` key of tusd-py's migrations (any fixed 64-bit number; this spells "tusd").
MIGRATION_LOCK = 0x74757364

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "recordings and processing jobs with leases",
        """
        CREATE TABLE recordings (
            id           text PRIMARY KEY,
            owner        text,
            status       text NOT NULL,
            mode         text,
            filename     text,
            length       bigint,
            "offset"     bigint NOT NULL DEFAULT 0,
            created_at   double precision NOT NULL,
            updated_at   double precision NOT NULL,
            uploaded_at  double precision,
            completed_at double precision,
            attempts     integer NOT NULL DEFAULT 0,
            last_error   text,
            job_id       text,
            results      text NOT NULL DEFAULT '{}'
        );
        CREATE INDEX recordings_by_owner ON recordings (owner, created_at DESC, id DESC);
        CREATE INDEX recordings_by_status ON recordings (status, updated_at);
        CREATE TABLE jobs (
            id          text PRIMARY KEY,
            -- UNIQUE: the database itself refuses a second job for an upload, whatever the caller does.
            upload_id   text NOT NULL UNIQUE REFERENCES recordings (id) ON DELETE CASCADE,
            status      text NOT NULL,
            attempts    integer NOT NULL DEFAULT 0,
            not_before  double precision NOT NULL,
            created_at  double precision NOT NULL,
            updated_at  double precision NOT NULL,
            claimed_at  double precision,
            claim_token bigint NOT NULL DEFAULT 0,
            -- The lease: which instance runs the job, and until when unless it renews.
            claimed_by  text,
            lease_until double precision,
            last_error  text
        );
        CREATE INDEX jobs_due ON jobs (status, not_before, created_at);
        CREATE INDEX jobs_leases ON jobs (status, lease_until);
        """,
    ),
    (
        2,
        "quota ledger: one claim per upload, one usage row per user",
        """
        CREATE TABLE quota_usage (
            owner      text PRIMARY KEY,
            bytes      bigint NOT NULL DEFAULT 0,
            unfinished integer NOT NULL DEFAULT 0
        );
        CREATE TABLE quota_claims (
            upload_id  text PRIMARY KEY,
            owner      text NOT NULL,
            bytes      bigint NOT NULL,
            unfinished boolean NOT NULL
        );
        """,
    ),
    (
        3,
        "hook outbox: events waiting for delivery, leased to one deliverer at a time",
        """
        CREATE TABLE hook_outbox (
            event_id     text NOT NULL,
            target       text NOT NULL,
            hook         text NOT NULL,
            upload_id    text,
            body         bytea NOT NULL,
            created_at   double precision NOT NULL,
            not_before   double precision NOT NULL,
            attempts     integer NOT NULL DEFAULT 0,
            lease_holder text,
            lease_until  double precision NOT NULL DEFAULT 0,
            last_error   text,
            PRIMARY KEY (event_id, target)
        );
        CREATE INDEX hook_outbox_due ON hook_outbox (not_before, created_at);
        """,
    ),
    (
        4,
        "hook outbox indexes: retention, next due row, a holder's leases (no scan per batch of a backlog)",
        """
        CREATE INDEX hook_outbox_created ON hook_outbox (created_at);
        CREATE INDEX hook_outbox_next ON hook_outbox ((GREATEST(not_before, lease_until)));
        CREATE INDEX hook_outbox_leases ON hook_outbox (lease_holder) WHERE lease_holder IS NOT NULL;
        """,
    ),
)

LATEST = MIGRATIONS[-1][0]


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply the missing migrations; return the versions this call applied. ``conn`` is not a pooled
    connection: it holds a session-level advisory lock meanwhile."""
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        if done and max(done) > LATEST:
            raise RuntimeError(
                f"the state database has schema version {max(done)}, newer than this tusd-py knows ({LATEST})"
            )
        for version, description, sql in MIGRATIONS:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)", version, description
                )
            applied.append(version)
            log.info("state database migrated", version=version, description=description)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied
