"""Lifecycle events of an upload, fanned out to whoever listens (hooks, the processing pipeline).

The core reports what happened; listeners decide what to do. A listener's failure is logged
and never undoes or loses the upload it was told about.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from storage_backends.base import UploadInfo

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
        for listener in self.listeners:
            try:
                await listener.on_created(info)
            except Exception:
                log.exception("listener failed", event="created", upload_id=info.id)

    def progress(self, info: UploadInfo) -> None:
        for listener in self.listeners:
            try:
                listener.on_progress(info)
            except Exception:
                log.exception("listener failed", event="progress", upload_id=info.id)

    async def finished(self, info: UploadInfo) -> None:
        for listener in self.listeners:
            try:
                await listener.on_finished(info)
            except Exception:
                log.exception("listener failed", event="finished", upload_id=info.id)

    async def terminated(self, info: UploadInfo) -> None:
        for listener in self.listeners:
            try:
                await listener.on_terminated(info)
            except Exception:
                log.exception("listener failed", event="terminated", upload_id=info.id)
