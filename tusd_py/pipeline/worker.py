"""The in-process worker pool: claims due jobs from the :class:`JobQueue` and runs the steps.

Each of ``concurrency`` workers loops: claim a job, run every registered step, report success or
failure. A failed attempt is retried after ``base_delay * 2 ** (attempt - 1)`` seconds (capped at
``max_delay``), the time stored in the job's ``not_before`` so a restart keeps the schedule; after
``max_attempts`` the recording is ``failed`` with the last error.

A job left ``running`` by a process that died is never lost. With a one-process store (SQLite),
start-up requeues it (the store's ``recover_running``). With a lease store (PostgreSQL), the
worker renews the job's lease every third of ``lease_seconds`` while the steps run, and another
instance takes the job once the lease runs out; a worker whose renewal is refused (its claim was
taken) cancels its steps. Either way the claim token makes a stale worker's late report harmless.
Idle workers wake on the store's notifications (PostgreSQL LISTEN/NOTIFY: jobs enqueued by any
instance) and on this process's enqueues, and poll every ``poll_interval`` as a bounded fallback.

``stop()`` stops claiming, lets running jobs finish for ``timeout`` seconds, then cancels them; a
cancelled job stays ``running`` in the store and is rerun at the next start (SQLite) or once its
lease runs out (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import structlog

from storage_backends.base import DataStore
from tusd_py.model.errors import StateStoreUnavailable
from tusd_py.model.storage_errors import UploadNotFound
from tusd_py.pipeline.models import Claim, OutboxEvent, Recording
from tusd_py.pipeline.steps import PermanentStepError, StepContext, StepRegistry
from tusd_py.pipeline.store import JobQueue
from tusd_py.telemetry import metrics

log = structlog.get_logger(__name__)

_MAX_ERROR_LENGTH = 2000

#: Hook outbox rows for a job's final state: (recording, "completed" | "failed", results, error).
#: They are written in the transaction that records that state (post-process webhooks).
OutcomeEvents = Callable[[Recording, str, dict[str, Any], str | None], Awaitable[Sequence[OutboxEvent]]]
#: Told the same once that state is recorded (post-process Python callables).
OutcomeListener = Callable[[Recording, str, dict[str, Any], str | None], Awaitable[None]]


class LeaseLost(Exception):
    """The job's claim is no longer ours (its lease ran out and another claimant took it)."""


class RetryPolicy(msgspec.Struct, kw_only=True, frozen=True):
    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("max_attempts must be >= 1 and delays >= 0")

    def delay(self, attempt: int) -> float | None:
        """Seconds before the attempt after ``attempt`` (1-based), or None if none is left."""
        if attempt >= self.max_attempts:
            return None
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_MAX_ERROR_LENGTH]


class WorkerPool:
    def __init__(
        self,
        store: JobQueue,
        steps: StepRegistry,
        data_store: DataStore,
        *,
        concurrency: int = 2,
        retry: RetryPolicy | None = None,
        job_timeout: float = 900.0,
        poll_interval: float = 5.0,
        spool_dir: str | None = None,
        outcome_events: OutcomeEvents | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        self.steps = steps
        self.data_store = data_store
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self.job_timeout = job_timeout
        self.poll_interval = poll_interval
        self.spool_dir = spool_dir
        self.outcome_events = outcome_events
        self.outcome_listener: OutcomeListener | None = None
        self.on_events: Callable[[], None] = lambda: None
        self._clock = clock
        # One permit per enqueue wakes one idle worker, not all of them: a woken worker that finds
        # nothing still costs two SQLite transactions on the store's single thread (bench/ small).
        # Permits are capped at the worker count; a permit given while every worker is busy is
        # taken by the next one to finish, so no enqueue is missed.
        self._wakeup: asyncio.Queue[None] = asyncio.Queue(maxsize=concurrency)
        self._stopping = False
        self._subscribed = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not self._stopping

    async def start(self) -> None:
        if self._tasks:
            return
        if not self.store.uses_leases:
            recovered = await self.store.recover_running()
            if recovered:
                log.warning("requeued jobs interrupted by a restart", upload_ids=recovered)
        self._stopping = False
        if not self._subscribed:
            self.store.on_job_available(self.notify)  # wake-ups from other processes (NOTIFY)
            self._subscribed = True
        self._tasks = [asyncio.create_task(self._work(n), name=f"pipeline-worker-{n}") for n in range(self.concurrency)]

    def notify(self) -> None:
        """A job was enqueued or became due: wake an idle worker now rather than at the next poll."""
        self._wake(1)

    def _wake(self, count: int) -> None:
        for _ in range(count):
            try:
                self._wakeup.put_nowait(None)
            except asyncio.QueueFull:  # a permit is already pending for every worker
                return

    async def stop(self, grace: float = 30.0) -> None:
        if not self._tasks:
            return
        self._stopping = True
        self._wake(self.concurrency)
        tasks, self._tasks = self._tasks, []
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled running jobs at shutdown; they run again at next start", count=len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    async def _work(self, number: int) -> None:
        chained: Claim | None = None  # the next job, claimed with the last one's completion
        while chained is not None or not self._stopping:  # a job claimed is run, even when stopping
            current, chained, ran = chained, None, False
            try:
                if current is None:
                    current = await self.store.claim_job()
                if current is not None:
                    looked, chained = await self._process(current, chain=True)
                    ran = not looked  # a completion that looked for the next job and found none: idle
            except StateStoreUnavailable as exc:  # expected during an outage: no traceback every poll
                log.warning("worker could not reach the recording store", worker=number, error=exc.detail)
            except Exception:
                log.exception("worker could not reach the recording store", worker=number)
            if ran or chained is not None or self._stopping:
                continue
            await self._idle()

    async def _idle(self) -> None:
        timeout = self.poll_interval
        try:
            due = await self.store.next_due()
        except Exception:
            due = None
        if due is not None:
            timeout = min(timeout, max(0.0, due - self._clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.get(), timeout=timeout)

    async def run_once(self) -> bool:
        """Claim and process one due job; False if none was due."""
        claim = await self.store.claim_job()
        if claim is None:
            return False
        await self._process(claim)
        return True

    async def _process(self, claim: Claim, *, chain: bool = False) -> tuple[bool, Claim | None]:
        """Run ``claim``'s job and report it. With ``chain`` (and a store that can), its completion
        also claims the next due job: (True, that claim or None when none is due); (False, None)
        when no next job was looked for."""
        job = claim.job
        logger = log.bind(job_id=job.id, upload_id=job.upload_id, attempt=job.attempts)
        logger.info("job started")
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self.job_timeout):
                results = await self._run_leased(claim)
            events = await self._events(claim, "completed", results, None)
            accepted, looked, following = await self._complete(claim, results, events, chain)
            if accepted:
                await self._recorded(claim, events, "completed", results, None)
        except LeaseLost:
            metrics.record_job(metrics.WHOLE_JOB, "lost", time.perf_counter() - began)
            logger.info("job's claim was taken by another claimant; it reports instead")
            return False, None
        except (PermanentStepError, UploadNotFound, TypeError, msgspec.EncodeError) as exc:
            # Not worth retrying: the input or the step's result is wrong, not the moment.
            metrics.record_job(metrics.WHOLE_JOB, "failed", time.perf_counter() - began)
            await self._report_failure(claim, exc, retry_in=None, logger=logger)
            return False, None
        except Exception as exc:
            retry_in = self.retry.delay(job.attempts)
            outcome = "failed" if retry_in is None else "retry"
            metrics.record_job(metrics.WHOLE_JOB, outcome, time.perf_counter() - began)
            await self._report_failure(claim, exc, retry_in, logger)
            return False, None
        metrics.record_job(metrics.WHOLE_JOB, "completed", time.perf_counter() - began)
        if accepted:
            logger.info("job completed")
        else:
            logger.info("job was requeued or removed meanwhile; result discarded")
        return looked, following

    async def _complete(
        self, claim: Claim, results: dict[str, Any], events: Sequence[OutboxEvent], chain: bool
    ) -> tuple[bool, bool, Claim | None]:
        """Report success: (accepted, whether the next job was looked for, the next claim)."""
        job = claim.job
        if chain and not events and not self._stopping:
            both = await self.store.complete_and_claim(job.id, job.claim_token, results)
            if both is not None:
                return both[0], True, both[1]
        return await self.store.complete_job(job.id, job.claim_token, results, events), False, None

    async def _report_failure(self, claim: Claim, exc: BaseException, retry_in: float | None, logger: Any) -> None:
        error = describe(exc) if not isinstance(exc, TimeoutError) else f"timed out after {self.job_timeout}s"
        if retry_in is None:
            logger.error("job failed", error=error)
        else:
            logger.warning("job attempt failed; will retry", error=error, retry_in=retry_in)
        events = await self._events(claim, "failed", {}, error) if retry_in is None else ()
        accepted = await self.store.fail_attempt(claim.job.id, claim.job.claim_token, error, retry_in, events)
        if accepted and retry_in is None:
            await self._recorded(claim, events, "failed", {}, error)
        if not accepted:
            logger.info("job was requeued or removed meanwhile; failure not recorded")

    async def _run_leased(self, claim: Claim) -> dict[str, Any]:
        """Run the steps while renewing the claim's lease; stop them if the claim is lost."""
        if not self.store.uses_leases:  # one process's store: a claim has no lease to keep alive
            return await self._run_steps(claim)
        steps = asyncio.ensure_future(self._run_steps(claim))
        renewing = asyncio.create_task(self._renew(claim, steps))
        try:
            return await steps
        except asyncio.CancelledError:
            if renewing.done() and not renewing.cancelled() and renewing.result() is False:
                raise LeaseLost(f"job {claim.job.id} was taken by another claimant") from None
            raise
        finally:
            renewing.cancel()
            steps.cancel()
            await asyncio.gather(renewing, steps, return_exceptions=True)

    async def _renew(self, claim: Claim, steps: asyncio.Future[dict[str, Any]]) -> bool:
        every = max(0.05, self.store.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            try:
                current = await self.store.renew_lease(claim.job.id, claim.job.claim_token)
            except Exception as exc:  # unreachable database: keep going, the lease may still hold
                log.warning("could not renew a job's lease", job_id=claim.job.id, error=describe(exc))
                continue
            if not current:
                log.warning("job's claim was lost; stopping it", job_id=claim.job.id, upload_id=claim.job.upload_id)
                steps.cancel()
                return False

    async def _recorded(
        self,
        claim: Claim,
        events: Sequence[OutboxEvent],
        status: str,
        results: dict[str, Any],
        error: str | None,
    ) -> None:
        if events:
            self.on_events()
        if self.outcome_listener is not None:
            try:
                await self.outcome_listener(claim.recording, status, results, error)
            except Exception:
                log.exception("post-process listener failed", upload_id=claim.recording.id)

    async def _events(
        self, claim: Claim, status: str, results: dict[str, Any], error: str | None
    ) -> Sequence[OutboxEvent]:
        if self.outcome_events is None:
            return ()
        try:
            return await self.outcome_events(claim.recording, status, results, error)
        except Exception:  # the job's outcome must be recorded even if its event cannot be built
            log.exception("post-process event could not be built", upload_id=claim.recording.id)
            return ()

    async def _run_steps(self, claim: Claim) -> dict[str, Any]:
        info = await self.data_store.get_info(claim.recording.id)
        ctx = StepContext(
            recording=claim.recording,
            job=claim.job,
            info=info,
            data_store=self.data_store,
            spool_dir=self.spool_dir,
        )
        try:
            for name, step in self.steps:
                began = time.perf_counter()
                try:
                    result = await step(ctx)
                except BaseException:
                    metrics.record_job(name, "error", time.perf_counter() - began)
                    raise
                metrics.record_job(name, "ok", time.perf_counter() - began)
                if not isinstance(result, dict):
                    raise TypeError(f"step {name!r} returned {type(result).__name__}, not dict")
                ctx.results[name] = result
        finally:
            await ctx.aclose()
        return ctx.results
