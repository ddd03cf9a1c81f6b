"""Durable post-* webhooks, the writing side: a lifecycle change becomes outbox rows.

:class:`HookOutbox` builds the event once (request id, forwarded headers, storage location) and
one :class:`OutboxEvent` per webhook that wants its type. It does no I/O: the recording store
writes the rows in the transaction that records the change (``PipelineListener`` and the worker
pass them on), and :mod:`tusd_py.hooks.delivery` sends them. Python callables are not durable;
they still run from :meth:`HookDispatcher.emit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from storage_backends.base import DataStore
from tusd_py.hooks.context import event_here
from tusd_py.hooks.events import HookType, ProcessOutcome
from tusd_py.hooks.throttle import ProgressThrottle
from tusd_py.hooks.webhook import WebhookConfig, encode_for
from tusd_py.model.storage_errors import UploadNotFound
from tusd_py.model.upload import UploadInfo
from tusd_py.pipeline.models import OutboxEvent, Recording
from tusd_py.protocol.urls import safe_url


class HookOutbox:
    def __init__(
        self,
        webhooks: Sequence[WebhookConfig],
        data_store: DataStore,
        *,
        progress_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._targets = [(safe_url(w.url), frozenset(w.hooks), w) for w in webhooks]
        self.data_store = data_store
        self.throttle = ProgressThrottle(progress_interval)
        self._clock = clock

    @property
    def targets(self) -> list[str]:
        return [target for target, _, _ in self._targets]

    def wants(self, hook_type: HookType) -> bool:
        return any(hook_type in hooks for _, hooks, _ in self._targets)

    def events(self, hook: str, info: UploadInfo, process: ProcessOutcome | None = None) -> list[OutboxEvent]:
        """The rows reporting ``hook`` for ``info`` (none if no webhook wants it, or throttled)."""
        hook_type = HookType(hook)
        targets = [(target, config) for target, hooks, config in self._targets if hook_type in hooks]
        if hook_type is HookType.POST_TERMINATE:
            self.throttle.forget(info.id)
        if not targets:
            return []
        if hook_type is HookType.POST_RECEIVE and not self.throttle.should_emit(info.id, info.offset, info.length):
            return []
        event = event_here(
            hook_type, info, storage=self.data_store.location(info.id), process=process, clock=self._clock
        )
        now = event.timestamp
        return [
            OutboxEvent(
                event_id=event.event_id,
                target=target,
                hook=hook,
                upload_id=info.id,
                body=encode_for(config, event, durable=True),  # encoded once: every attempt sends these bytes
                created_at=now,
                not_before=now,
            )
            for target, config in targets
        ]

    async def process_events(
        self, recording: Recording, status: str, results: dict[str, Any], error: str | None
    ) -> list[OutboxEvent]:
        """post-process rows for a job's final state (the worker writes them with that state)."""
        if not self.wants(HookType.POST_PROCESS):
            return []
        info = await processed_upload(self.data_store, recording)
        outcome = ProcessOutcome(status=status, results=results, error=error)
        return self.events(str(HookType.POST_PROCESS), info, outcome)


async def processed_upload(data_store: DataStore, recording: Recording) -> UploadInfo:
    """The upload a job was about, for its post-process event (its digest included)."""
    try:
        return await data_store.get_info(recording.id)
    except UploadNotFound:  # processing failed because the bytes are gone: say what we know
        return UploadInfo(id=recording.id, length=recording.length, offset=recording.offset, owner=recording.owner)
