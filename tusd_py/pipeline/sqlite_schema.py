"""The SQLite schema of the recording store.

Kept apart from :mod:`tusd_py.pipeline.sqlite_store` (which owns the connection, the thread and
the transactions) and :mod:`tusd_py.pipeline.sqlite_tables` (the statements) so the tables can be
read in one place.
"""

from __future__ import annotations

# 2: the hook_outbox table (durable webhooks). 3: the outbox's indexes for the retention, the next
# due row and a holder's leases (a backlog must not be scanned per batch). Each version only adds
# tables and indexes (CREATE ... IF NOT EXISTS), so opening an older database migrates it.
# 4: the jobs' lease columns and index (``sqlite_leases.migrate``), for a file shared by processes.
SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    id           TEXT PRIMARY KEY,
    owner        TEXT,
    status       TEXT NOT NULL,
    mode         TEXT,
    filename     TEXT,
    length       INTEGER,
    offset       INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    uploaded_at  REAL,
    completed_at REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    job_id       TEXT,
    results      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS recordings_by_owner ON recordings (owner, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS recordings_by_status ON recordings (status, updated_at);
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    -- UNIQUE: the database itself refuses a second job for an upload, whatever the caller does.
    upload_id   TEXT NOT NULL UNIQUE REFERENCES recordings (id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    not_before  REAL NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    claimed_at  REAL,
    claim_token INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (status, not_before, created_at);
CREATE TABLE IF NOT EXISTS hook_outbox (
    event_id     TEXT NOT NULL,
    target       TEXT NOT NULL,
    hook         TEXT NOT NULL,
    upload_id    TEXT,
    body         BLOB NOT NULL,
    created_at   REAL NOT NULL,
    not_before   REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    -- A claim is a lease: another instance may take the row once lease_until has passed.
    lease_holder TEXT,
    lease_until  REAL NOT NULL DEFAULT 0,
    last_error   TEXT,
    PRIMARY KEY (event_id, target)
);
CREATE INDEX IF NOT EXISTS hook_outbox_due ON hook_outbox (not_before, created_at);
CREATE INDEX IF NOT EXISTS hook_outbox_created ON hook_outbox (created_at);
CREATE INDEX IF NOT EXISTS hook_outbox_next ON hook_outbox (MAX(not_before, lease_until));
CREATE INDEX IF NOT EXISTS hook_outbox_leases ON hook_outbox (lease_holder) WHERE lease_holder IS NOT NULL;
"""
