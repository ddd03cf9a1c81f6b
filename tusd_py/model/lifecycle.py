"""Lifecycle events of an upload, fanned out to whoever listens (hooks, quotas, the pipeline).

The core reports what happened; listeners decide what to do. A listener's failure is logged
and never undoes or loses the upload it was told about.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from tusd_py.model.upload import UploadInfo

log = structlog.get_logger(__name__)


class UploadListener(Protocol):
    async def on_created(self, info: UploadInfo) -> None: ...
    def on_progress(self, info: UploadInfo) -> None: ...
    async def on_finished(self, info: UploadInfo) -> None: ...
    async def on_terminated(self, info: UploadInfo) -> None: ...


class Lifecycle:
    def __init__(self) -> None:
        self.listeners: list[UploadListener] = []

    def add(self, listener: UploadListener) -> None:
        self.listeners.append(listener)

    async def created(self, info: UploadInfo) -> None:
        await self._notify("created", info, lambda listener: listener.on_created)

    def progress(self, info: UploadInfo) -> None:
        # Synchronous: it runs on the PATCH hot path, so listeners only schedule work here.
        for listener in self.listeners:
            try:
                listener.on_progress(info)
            except Exception:
                log.exception("listener failed", event="progress", upload_id=info.id)

    async def finished(self, info: UploadInfo) -> None:
        await self._notify("finished", info, lambda listener: listener.on_finished)

    async def terminated(self, info: UploadInfo) -> None:
        await self._notify("terminated", info, lambda listener: listener.on_terminated)

    async def _notify(
        self,
        event: str,
        info: UploadInfo,
        method: Callable[[UploadListener], Callable[[UploadInfo], Awaitable[None]]],
    ) -> None:
        for listener in self.listeners:
            try:
                await method(listener)(info)
            except Exception:
                log.exception("listener failed", event=event, upload_id=info.id)
