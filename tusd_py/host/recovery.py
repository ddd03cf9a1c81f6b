"""Before the first worker of a run starts: jobs a previous run left ``running`` are queued again.

The workers share the SQLite file and claim jobs with leases, so none of them may requeue
``running`` jobs at its start (a restarted worker would take its siblings' jobs). Before the first
worker exists, though, every ``running`` job belongs to a run that is over: the supervisor
requeues them at once, as one process does at start, instead of leaving them for their leases to
run out (``--job-lease``, a minute by default).
"""

from __future__ import annotations

import asyncio

import structlog

from tusd_py.config.values import Config

log = structlog.get_logger(__name__)


def requeue_previous_runs_jobs(config: Config) -> None:
    """Requeue what the last run left running (SQLite only; PostgreSQL's instances may be live)."""
    if config.database_url:
        return
    from tusd_py.pipeline.sqlite_store import SQLiteRecordingStore

    async def requeue() -> list[str]:
        # Opened as one process's store (no lease): before the first worker, the supervisor is the
        # file's only user, so every running job is a dead run's.
        store = SQLiteRecordingStore(config.state_db_path)
        await store.open()
        try:
            return await store.recover_running()
        finally:
            await store.close()

    try:
        recovered = asyncio.run(requeue())
    except Exception as exc:  # the workers meet the same file and explain what is wrong with it
        log.warning("could not requeue the jobs of the previous run", error=str(exc))
        return
    if recovered:
        log.warning("requeued jobs interrupted by a restart", upload_ids=recovered)
