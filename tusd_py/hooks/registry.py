"""In-process hooks: Python callables registered by code that embeds the server.

What a callable returns depends on its hook type, and the overloads let a type checker hold
the caller to it: pre-create returns a PreCreateResult (or None to accept), pre-finish and
pre-terminate a HookRejection (or None), post hooks nothing (``post-process`` callables run when
the processing worker has recorded a job's final state).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, overload

from tusd_py.hooks.events import HookEvent, HookType
from tusd_py.hooks.results import HookRejection, PreCreateResult

PreCreateHook = Callable[[HookEvent], Awaitable[PreCreateResult | None]]
PreFinishHook = Callable[[HookEvent], Awaitable[HookRejection | None]]
PostHook = Callable[[HookEvent], Awaitable[None]]
AnyHook = Callable[[HookEvent], Awaitable[object]]

PostHookType = Literal[
    HookType.POST_CREATE, HookType.POST_RECEIVE, HookType.POST_FINISH, HookType.POST_TERMINATE, HookType.POST_PROCESS
]
PreRejectType = Literal[HookType.PRE_FINISH, HookType.PRE_TERMINATE]


class HookRegistry:
    def __init__(self) -> None:
        self._hooks: dict[HookType, list[AnyHook]] = {t: [] for t in HookType}

    @overload
    def register(self, hook_type: Literal[HookType.PRE_CREATE], fn: PreCreateHook) -> None: ...
    @overload
    def register(self, hook_type: PreRejectType, fn: PreFinishHook) -> None: ...
    @overload
    def register(self, hook_type: PostHookType, fn: PostHook) -> None: ...

    def register(self, hook_type: HookType, fn: AnyHook) -> None:
        """Add ``fn``; hooks of one type run in registration order."""
        if not callable(fn):
            raise TypeError("hook must be an async callable")
        self._hooks[HookType(hook_type)].append(fn)

    def hooks(self, hook_type: HookType) -> list[AnyHook]:
        return list(self._hooks[hook_type])
