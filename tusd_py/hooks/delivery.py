"""Durable post-* webhooks, the sending side: deliver outbox rows at least once.

One loop per server process: lease due rows from the recording store (``claim_events``), send each
with one attempt, then delete it (2xx) or reschedule it with exponential backoff and jitter
(``backoff_delay``), for as long as ``retention`` seconds after the event happened; past that, or
on an answer a retry cannot change (a 4xx other than 408/429), the row is dropped and logged. The
lease (longer than an attempt can take) keeps two instances on one database from sending a row at
once, and brings back the rows of an instance that died holding them. Delivery is at least once:
a receiver de-duplicates on ``webhook-id`` (the ``event_id``), which never changes.

A round costs the same few indexed statements however long the backlog: at most ``batch`` rows
claimed and ``drop_batch`` rows dropped past the retention. The outbox gauge is counted when
``/metrics`` is scraped (``tusd_py.http.ops_routes``), not here, since a count reads every row.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import structlog

from tusd_py.hooks.events import HookType
from tusd_py.hooks.results import InvalidHookResult
from tusd_py.hooks.tusd_format import ResponsePatch
from tusd_py.hooks.tusd_format import parse_reply as parse_tusd_reply
from tusd_py.hooks.webhook import WebhookClient, WebhookConfig, WebhookFailed, backoff_delay
from tusd_py.pipeline.models import OutboxEvent
from tusd_py.pipeline.store import EventOutbox
from tusd_py.telemetry import metrics

log = structlog.get_logger(__name__)


class OutboxDelivery:
    def __init__(
        self,
        store: EventOutbox,
        webhooks: Sequence[WebhookConfig],
        *,
        retention: float = 3 * 24 * 3600,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        batch: int = 32,
        drop_batch: int = 256,
        poll_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        stop_upload: Callable[[str, ResponsePatch], Awaitable[None]] | None = None,
    ) -> None:
        backoff_base = min(backoff_base, backoff_max)
        if retention <= 0 or backoff_base <= 0:
            raise ValueError("retention and backoff must be positive, backoff_max at least backoff_base")
        self.store = store
        self.clients = {client.target: client for client in (WebhookClient(w) for w in webhooks)}
        self.retention = retention
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.batch = batch
        self.drop_batch = drop_batch
        self.poll_interval = poll_interval
        # An attempt is bounded by the webhook timeout; the lease outlasts it by a wide margin.
        self.lease = max(30.0, 3 * max((w.timeout for w in webhooks), default=5.0))
        self.holder = uuid.uuid4().hex  # this process; a restart is a new holder
        self._clock = clock
        self._rand = rand
        # tusd's StopUpload (a tusd-format post-receive reply): ends and deletes the upload.
        self.stop_upload = stop_upload
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def notify(self) -> None:
        """Rows were written: look now rather than at the next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="webhook-outbox")

    async def stop(self, grace: float) -> None:
        """Finish the attempts in flight for up to ``grace`` s; unsent rows stay for the next start."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wakeup.set()
            _, pending = await asyncio.wait({task}, timeout=grace)
            for left in pending:
                left.cancel()
                await asyncio.gather(left, return_exceptions=True)
            # Attempts cut short may have reached the receiver (at least once): their rows go
            # out again, from the next start or another instance, without waiting for the lease.
            with contextlib.suppress(Exception):
                await self.store.release_events(self.holder)
        for client in self.clients.values():
            await client.close()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("webhook outbox: the state store failed; retrying")
                sent = 0
            if sent or self._stopping:
                continue
            await self._idle()

    async def _idle(self) -> None:
        timeout = self.poll_interval
        with contextlib.suppress(Exception):
            due = await self.store.next_event_due()
            if due is not None:
                timeout = min(timeout, max(0.05, due - self._clock()))
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=timeout)

    async def run_once(self) -> int:
        """Drop rows past the retention, then send one batch of due rows; return how many were handled."""
        dropped = await self.store.drop_events_before(self._clock() - self.retention, self.drop_batch)
        for row in dropped:
            self._gave_up(row, "retention ended before a delivery succeeded")
        rows = await self.store.claim_events(self.holder, self.lease, self.batch)
        if rows:
            await asyncio.gather(*(self._deliver(row) for row in rows))
        # A full drop batch means more expired rows wait: come back at once rather than idle.
        return len(rows) + (len(dropped) if len(dropped) >= self.drop_batch else 0)

    async def _deliver(self, row: OutboxEvent) -> None:
        client = self.clients.get(row.target)
        if client is None:
            # Written for a webhook that is no longer configured: keep it until the retention ends,
            # in case the configuration comes back.
            await self.store.event_failed(
                row.event_id, row.target, self.holder, "target not configured", self._clock() + self.backoff_max
            )
            return
        try:
            reply = await client.send(row.body, row.hook, row.event_id)
        except WebhookFailed as exc:
            await self._failed(row, exc)
            return
        except Exception as exc:  # a bug must not wedge the row: it is retried like a failure
            log.exception("webhook delivery crashed", hook=row.hook, target=row.target, event_id=row.event_id)
            await self._failed(row, WebhookFailed(type(exc).__name__, unavailable=True, retryable=True))
            return
        await self.store.event_delivered(row.event_id, row.target, self.holder)
        metrics.record_hook(row.hook, failed=False)
        metrics.record_webhook_delivery(row.hook, "delivered")
        log.debug("webhook delivered", hook=row.hook, target=row.target, event_id=row.event_id, attempts=row.attempts)
        if client.tusd and row.hook == HookType.POST_RECEIVE and self.stop_upload is not None and row.upload_id:
            await self._maybe_stop(row, row.upload_id, reply, self.stop_upload)

    async def _maybe_stop(
        self, row: OutboxEvent, upload_id: str, reply: bytes, stop: Callable[[str, ResponsePatch], Awaitable[None]]
    ) -> None:
        """tusd's StopUpload. The event was sent after the PATCH it reports had stored its bytes, so
        the upload is ended the way a DELETE ends it (a request writing it meanwhile is cut), with
        post-terminate hooks and no pre-terminate, as in tusd."""
        try:
            outcome = parse_tusd_reply(HookType.POST_RECEIVE, reply)
        except InvalidHookResult as exc:
            log.warning("post-receive reply ignored", target=row.target, upload_id=row.upload_id, reason=str(exc))
            return
        if not outcome.stop or outcome.refusal is None:
            return
        log.info("post-receive hook stopped the upload", target=row.target, upload_id=row.upload_id)
        try:
            await stop(upload_id, outcome.refusal)
        except Exception:
            log.exception("stopping the upload failed", upload_id=row.upload_id)

    async def _failed(self, row: OutboxEvent, exc: WebhookFailed) -> None:
        retry_at = self._clock() + backoff_delay(row.attempts - 1, self.backoff_base, self.backoff_max, self._rand)
        if not exc.retryable or retry_at > row.created_at + self.retention:
            await self.store.event_failed(row.event_id, row.target, self.holder, exc.reason, None)
            self._gave_up(row, exc.reason)
            return
        await self.store.event_failed(row.event_id, row.target, self.holder, exc.reason, retry_at)
        metrics.record_webhook_delivery(row.hook, "retry")
        log.info(
            "webhook attempt failed, will retry",
            hook=row.hook,
            target=row.target,
            event_id=row.event_id,
            attempt=row.attempts,
            reason=exc.reason,
            retry_in=round(retry_at - self._clock(), 3),
        )

    def _gave_up(self, row: OutboxEvent, reason: str) -> None:
        metrics.record_hook(row.hook, failed=True)
        metrics.record_webhook_delivery(row.hook, "gave_up")
        log.error(
            "webhook gave up",
            hook=row.hook,
            target=row.target,
            upload_id=row.upload_id,
            event_id=row.event_id,
            attempts=row.attempts,
            reason=reason,
        )
