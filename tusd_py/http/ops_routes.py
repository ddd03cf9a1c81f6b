"""Routes for the people who run the server: ``/metrics`` (Prometheus) and ``/readyz`` (readiness).

Both are public (no token): a scraper or a load balancer has none, and neither shows an upload.
``/healthz`` (in the app factory) stays liveness: the process answers. ``/readyz`` answers whether
it can do its work: each part it depends on is exercised for real (a probe upload written to and
deleted from the storage, a query on the state store), bounded by ``--readyz-timeout``, and a 503
names every part that failed, so the load balancer stops sending uploads that would fail.

Both answer anyone, often, so both are cheap whatever the traffic: the readiness answer is kept for
``READY_FOR`` seconds and concurrent probes share one round of checks (single flight), so a flood
of ``/readyz`` costs one probe upload a second; a scrape counts the job queue with one
``GROUP BY`` statement instead of reading its rows.

With ``--metrics-port`` the metrics are served only on their own listener (often kept off the
public network), which answers ``/readyz`` too; ``--no-metrics`` serves them nowhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import structlog
from aiohttp import web

from storage_backends.base import CAP_TERMINATION
from tusd_py.model.upload import UploadInfo
from tusd_py.pipeline.service import Pipeline
from tusd_py.telemetry import metrics
from tusd_py.uploads.tus_service import TusService

log = structlog.get_logger(__name__)

READYZ_PATH = "/readyz"
PROBE_PREFIX = "readyz-probe-"
READY_FOR = 1.0  # seconds a readiness answer is reused: a prober every second or less still sees fresh checks

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CheckResult:
    part: str
    error: str | None  # None: the part works


def readiness_answer(results: list[CheckResult]) -> tuple[int, str]:
    """200 when every part works, else 503 naming each failing part and why."""
    failing = [r for r in results if r.error is not None]
    if not failing:
        return 200, "ready: " + ", ".join(f"{r.part} ok" for r in results) + "\n"
    return 503, "not ready: " + "; ".join(f"{r.part}: {r.error}" for r in failing) + "\n"


async def run_check(part: str, check: Check, timeout: float) -> CheckResult:  # noqa: ASYNC109 - per-check bound
    try:
        await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        return CheckResult(part, f"no answer within {timeout:g} s")
    except Exception as exc:
        # The details (paths, bucket names) go to the log only: /readyz answers anyone.
        log.warning("readiness check failed", part=part, error=repr(exc))
        return CheckResult(part, f"failed ({type(exc).__name__}; details in the server log)")
    return CheckResult(part, None)


class Operations:
    def __init__(self, service: TusService, pipeline: Pipeline) -> None:
        self.service = service
        self.pipeline = pipeline
        self._answer: tuple[float, tuple[int, str]] | None = None  # (monotonic time, answer)
        self._checking: asyncio.Task[tuple[int, str]] | None = None

    def checks(self) -> dict[str, Check]:
        checks: dict[str, Check] = {"storage": self.probe_storage, "state store": self.probe_state_store}
        if self.service.config.redis_url is not None:  # shared upload locks: no lock, no upload
            checks["upload locks"] = self.service.locker.probe
        return checks

    async def probe_storage(self) -> None:
        """Write and delete a probe upload through the storage backend, as an upload would.

        Its length is unknown (deferred), so crash recovery never mistakes it for a finished
        upload; if the delete fails, the expiration sweeper removes it like any abandoned upload.
        """
        store = self.service.store
        now = time.time()
        probe = UploadInfo(id=PROBE_PREFIX + secrets.token_hex(8), length=None, created_at=now, updated_at=now)
        await store.create(probe)
        if CAP_TERMINATION in store.capabilities:
            await store.terminate(probe.id)

    async def probe_state_store(self) -> None:
        await self.pipeline.list_queue(limit=1)

    async def readyz(self, request: web.Request) -> web.Response:
        status, text = await self.readiness()
        return web.Response(status=status, text=text, headers={"Cache-Control": "no-store"})

    async def readiness(self) -> tuple[int, str]:
        """The last answer if younger than READY_FOR, else the one round of checks running now (or a new one)."""
        if self._answer is not None and time.monotonic() - self._answer[0] < READY_FOR:
            return self._answer[1]
        if self._checking is None:
            self._checking = asyncio.create_task(self._check_all(), name="readyz")
            self._checking.add_done_callback(self._checked)
        # Shielded: a prober that hangs up must not cancel the round the others are waiting for.
        return await asyncio.shield(self._checking)

    async def _check_all(self) -> tuple[int, str]:
        timeout = self.service.config.readyz_timeout
        results = await asyncio.gather(*(run_check(part, c, timeout) for part, c in self.checks().items()))
        return readiness_answer(list(results))

    def _checked(self, task: asyncio.Task[tuple[int, str]]) -> None:
        self._checking = None
        if not task.cancelled() and task.exception() is None:
            self._answer = (time.monotonic(), task.result())

    async def metrics(self, request: web.Request) -> web.Response:
        await self._refresh_state_facts()
        return web.Response(body=metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE})

    async def _refresh_state_facts(self) -> None:
        """Queue depth and outbox size are facts of the shared state store, counted when scraped
        (one statement each), never per job or per delivery round."""
        try:
            depth = await self.pipeline.queue_depth()
            waiting = await self.pipeline.store.count_events()
        except Exception as exc:  # a scrape must still answer; readiness reports the store
            log.warning("state store metrics unavailable", error=repr(exc))
            return
        metrics.set_queue(depth.by_status, depth.oldest_queued_at)
        metrics.WEBHOOK_OUTBOX.set(waiting)


def add_ops_routes(
    app: web.Application, service: TusService, pipeline: Pipeline
) -> Callable[[], AbstractAsyncContextManager[None]] | None:
    """Mount /readyz, and /metrics on this app or on its own port. Returns the metrics port's
    listener, to start and stop with the server's other parts (None: no listener of its own)."""
    ops = Operations(service, pipeline)
    config = service.config
    app.router.add_get(READYZ_PATH, ops.readyz, name="public.readyz")
    if config.no_metrics:
        return None
    if not config.metrics_port:
        app.router.add_get(config.metrics_path, ops.metrics, name="public.metrics")
        return None
    metrics_app = web.Application()
    metrics_app.router.add_get(config.metrics_path, ops.metrics, name="public.metrics")
    # Probes often reach only the operators' listener; the answer is the main app's (one cache).
    metrics_app.router.add_get(READYZ_PATH, ops.readyz, name="public.readyz")

    @contextlib.asynccontextmanager
    async def listening() -> AsyncIterator[None]:
        runner = web.AppRunner(metrics_app, access_log=None)
        try:
            await runner.setup()
            # The workers of --processes N each listen on the metrics port too: any one answers for all.
            await web.TCPSite(runner, config.host, config.metrics_port, reuse_port=config.processes > 1 or None).start()
            log.info("serving metrics", url=f"http://{config.host}:{config.metrics_port}{config.metrics_path}")
            yield
        finally:
            await runner.cleanup()

    return listening
