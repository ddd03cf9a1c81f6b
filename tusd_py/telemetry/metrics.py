"""Prometheus metrics: every metric the server exports, defined once, and the text exposition.

tusd's series (v2.10, ``pkg/prometheuscollector`` and ``cmd/tusd/cli/metrics.go``) are exported
under tusd's exact names and types, so a tusd dashboard's queries work unchanged. tusd exports four
counters without the ``_total`` suffix (``tusd_bytes_received``, ``tusd_uploads_created`` /
``_finished`` / ``_terminated``), which prometheus_client cannot name: they are counted by the
``Counter`` objects below (exported as ``..._total``, our names since the start, kept) and written
a second time under tusd's names by :func:`exposition` (:data:`TUSD_BARE_COUNTERS`). The rest are
``tusd_py_*``. Code elsewhere calls the small ``record_*`` functions or the named
objects here, never prometheus_client directly, so a metric is defined in one place.

The objects live in one module-level registry (not prometheus_client's global one, so embedding
tusd-py next to other exporters cannot collide). Multi-process serving (``--processes N``, the
scale-out issue) is prepared for: with ``PROMETHEUS_MULTIPROC_DIR`` set before this module is
imported, prometheus_client keeps every value in per-process mmap files and :func:`exposition`
merges them, so any process answers for all; gauges declare how they merge (``livesum``).

The PATCH hot path never touches a metric per chunk: bytes are counted once per request, at its end.
"""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tusd_py.model.upload import UploadInfo

CONTENT_TYPE = CONTENT_TYPE_LATEST
REGISTRY = CollectorRegistry(auto_describe=True)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_BYTES = tuple(float(4**n * 1024) for n in range(0, 11))  # 1 KiB .. 1 GiB

# -- tusd's names ---------------------------------------------------------------------------------
REQUESTS = Counter("tusd_requests", "HTTP requests by (effective) method", ["method"], registry=REGISTRY)
for _method in ("GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"):  # tusd shows these from the start, at 0
    REQUESTS.labels(_method)
ERRORS = Counter("tusd_errors", "error responses by status and error code", ["status", "code"], registry=REGISTRY)
BYTES_RECEIVED = Counter("tusd_bytes_received", "upload bytes stored", registry=REGISTRY)
UPLOADS_CREATED = Counter("tusd_uploads_created", "uploads created", registry=REGISTRY)
UPLOADS_FINISHED = Counter("tusd_uploads_finished", "uploads finished (every byte stored)", registry=REGISTRY)
UPLOADS_TERMINATED = Counter("tusd_uploads_terminated", "uploads deleted", registry=REGISTRY)
CONNECTIONS_OPEN = Gauge(
    "tusd_connections_open", "client connections being served", registry=REGISTRY, multiprocess_mode="livesum"
)
HOOK_INVOCATIONS = Counter("tusd_hook_invocations", "hook invocations by hook type", ["hooktype"], registry=REGISTRY)
HOOK_ERRORS = Counter("tusd_hook_errors", "hook invocations that failed, by hook type", ["hooktype"], registry=REGISTRY)

# -- ours -----------------------------------------------------------------------------------------
REQUEST_DURATION = Histogram(
    "tusd_py_request_duration_seconds",
    "time to answer a request (a PATCH: until its body is stored)",
    ["method", "status"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
PATCH_BYTES = Histogram(
    "tusd_py_patch_bytes",
    "bytes stored per request body (PATCH, creation-with-upload)",
    buckets=_BYTES,
    registry=REGISTRY,
)
LOCK_WAIT = Histogram(
    "tusd_py_lock_wait_seconds", "time a request waited for an upload's lock", buckets=_SECONDS, registry=REGISTRY
)
LOCK_TAKEOVERS = Counter(
    "tusd_py_lock_takeovers", "requests that asked the holder of an upload's lock to let go", registry=REGISTRY
)
LOCK_TIMEOUTS = Counter("tusd_py_lock_timeouts", "lock waits that gave up (423)", registry=REGISTRY)
QUOTA_REFUSALS = Counter(
    "tusd_py_quota_refusals", "requests refused by a user's quota, by limit", ["limit"], registry=REGISTRY
)
JOBS = Counter(
    "tusd_py_processing_jobs", "processing job runs by step and outcome", ["step", "outcome"], registry=REGISTRY
)
JOB_DURATION = Histogram(
    "tusd_py_processing_job_duration_seconds",
    "processing job run time by step",
    ["step"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "tusd_py_processing_queue_depth",
    "processing jobs by state (read at scrape time)",
    ["state"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
QUEUE_OLDEST_AGE = Gauge(
    "tusd_py_processing_queue_oldest_age_seconds",
    "age of the oldest queued job (0: none)",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
S3_REQUESTS = Counter(
    "tusd_py_s3_requests", "S3 requests by operation and outcome", ["operation", "outcome"], registry=REGISTRY
)
S3_DURATION = Histogram(
    "tusd_py_s3_request_duration_seconds",
    "S3 request latency by operation",
    ["operation"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "tusd_py_webhook_deliveries",
    "post-* webhook delivery attempts by hook type and outcome (delivered, retry, gave_up)",
    ["hooktype", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_BACKLOG = Gauge(
    "tusd_py_webhook_backlog",
    "post-* webhook events being delivered in memory (without the outbox)",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
WEBHOOK_OUTBOX = Gauge(
    "tusd_py_webhook_outbox_events",
    "post-* webhook events waiting in the state store's outbox (all instances)",
    registry=REGISTRY,
    # Counted from the shared table by whichever process answers a scrape: its count, not a sum.
    multiprocess_mode="mostrecent",
)

WORKER_RESTARTS = Counter(
    "tusd_py_worker_restarts",
    "worker processes restarted by the supervisor after they died (--processes N)",
    registry=REGISTRY,
)


def record_request(method: str, status: int, seconds: float, error_code: str | None) -> None:
    """One answered request; ``error_code`` names the error of a 4xx/5xx (a bounded set of names)."""
    REQUESTS.labels(method).inc()
    REQUEST_DURATION.labels(method, str(status)).observe(seconds)
    if status >= 400:
        ERRORS.labels(str(status), error_code or "unknown").inc()


def record_body(stored: int) -> None:
    """A request body ended (completely or not) with ``stored`` new bytes kept."""
    if stored > 0:
        BYTES_RECEIVED.inc(stored)
    PATCH_BYTES.observe(max(0, stored))


def record_hook(hook_type: str, *, failed: bool) -> None:
    HOOK_INVOCATIONS.labels(hook_type).inc()
    if failed:
        HOOK_ERRORS.labels(hook_type).inc()


def setup_hook_metrics(hook_types: list[str]) -> None:
    """Hooks are on: show every hook type's counters from the start, at 0, as tusd does."""
    for hook_type in hook_types:
        HOOK_INVOCATIONS.labels(hook_type)
        HOOK_ERRORS.labels(hook_type)


def record_webhook_delivery(hook_type: str, outcome: str) -> None:
    """For the webhook sender: a post-* event ``delivered`` or one it ``gave_up`` on."""
    WEBHOOK_DELIVERIES.labels(hook_type, outcome).inc()


WHOLE_JOB = "all"  # the step label of a whole job run (outcome: completed, retry, failed)


def record_job(step: str, outcome: str, seconds: float) -> None:
    """A step's run (outcome ok or error), or with step WHOLE_JOB a whole job's."""
    JOBS.labels(step, outcome).inc()
    JOB_DURATION.labels(step).observe(seconds)


def set_queue(by_state: dict[str, int], oldest_queued_at: float | None) -> None:
    for state, count in by_state.items():
        QUEUE_DEPTH.labels(state).set(count)
    QUEUE_OLDEST_AGE.set(max(0.0, time.time() - oldest_queued_at) if oldest_queued_at is not None else 0.0)


class MetricsListener:
    """Counts upload lifecycle events (a :class:`tusd_py.model.lifecycle.UploadListener`)."""

    async def on_created(self, info: UploadInfo) -> None:
        UPLOADS_CREATED.inc()

    def on_progress(self, info: UploadInfo) -> None:
        pass  # bytes are counted per request (record_body), not per progress event

    async def on_finished(self, info: UploadInfo) -> None:
        UPLOADS_FINISHED.inc()

    async def on_terminated(self, info: UploadInfo) -> None:
        UPLOADS_TERMINATED.inc()


# tusd's counters named without ``_total``: our counter -> tusd's help text (pkg/prometheuscollector).
TUSD_BARE_COUNTERS: dict[str, str] = {
    "tusd_bytes_received": "Number of bytes received for uploads.",
    "tusd_uploads_created": "Number of created uploads.",
    "tusd_uploads_finished": "Number of finished uploads.",
    "tusd_uploads_terminated": "Number of terminated uploads.",
}


def exposition() -> bytes:
    """The Prometheus text format of every metric; merged over all processes in multi-process mode."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry) + tusd_bare_counters(registry)


def tusd_bare_counters(registry: CollectorRegistry) -> bytes:
    """tusd's four ``_total``-less counters, from the same (merged) values as ours."""
    totals = {
        family.name: sample.value
        for family in registry.collect()
        if family.name in TUSD_BARE_COUNTERS
        for sample in family.samples
        if sample.name == family.name + "_total"
    }
    lines = []
    for name, help_text in TUSD_BARE_COUNTERS.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {totals.get(name, 0.0)!r}"]
    return ("\n".join(lines) + "\n").encode()
