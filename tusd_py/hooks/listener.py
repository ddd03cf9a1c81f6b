"""Adapter from the core's upload lifecycle (tusd_py.model.lifecycle) to post hooks.

The lifecycle reports bare UploadInfo values; the request id comes from structlog's context
(bound by the request middleware) and the user id is the upload's owner.
"""

from __future__ import annotations

import structlog

from tusd_py.hooks.dispatcher import HookDispatcher
from tusd_py.hooks.events import HookType, build_event
from tusd_py.model.upload import UploadInfo


class HookListener:
    """An ``UploadListener`` (see tusd_py.model.lifecycle) that emits post-* hooks."""

    def __init__(self, dispatcher: HookDispatcher) -> None:
        self.dispatcher = dispatcher

    def _emit(self, hook_type: HookType, info: UploadInfo) -> None:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        event = build_event(
            hook_type,
            info,
            user_id=info.owner,
            request_id=request_id if isinstance(request_id, str) else None,
        )
        self.dispatcher.emit(hook_type, event)

    async def on_created(self, info: UploadInfo) -> None:
        self._emit(HookType.POST_CREATE, info)

    def on_progress(self, info: UploadInfo) -> None:
        self._emit(HookType.POST_RECEIVE, info)

    async def on_finished(self, info: UploadInfo) -> None:
        self._emit(HookType.POST_FINISH, info)

    async def on_terminated(self, info: UploadInfo) -> None:
        self._emit(HookType.POST_TERMINATE, info)
