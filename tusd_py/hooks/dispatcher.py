"""HookDispatcher: runs callables and webhooks for each hook type, with one failure policy.

Pre-* hooks run in order (callables in registration order, then webhooks in configuration
order) and the first rejection wins; pre-create changes accumulate, and each hook sees the
event as changed by the hooks before it. A pre hook that cannot answer rejects the request when
its policy is fail-closed: for an access-control hook, "down" must not mean "allowed".

Post-* hooks never delay or fail a request: :meth:`emit` schedules one tracked background task
per target and returns. Failures are logged; the upload is already stored and stays stored.
With ``durable`` set (the server's setting), post-* webhooks are not sent from here at all: they
go through the outbox (:mod:`tusd_py.hooks.outbox`, :mod:`tusd_py.hooks.delivery`), and ``emit``
runs only the Python callables. Without it (embedders, ``tusd-py sweep``) webhooks are retried in
memory, ``retries`` times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import msgspec
import structlog

from tusd_py.hooks import tusd_format
from tusd_py.hooks.context import answer, with_request
from tusd_py.hooks.events import POST_HOOKS, HookEvent, HookType, split_metadata
from tusd_py.hooks.registry import AnyHook, HookRegistry
from tusd_py.hooks.replies import parse_reply
from tusd_py.hooks.results import (
    HookChange,
    HookRejection,
    InvalidHookResult,
    PreCreateResult,
    merge_changes,
)
from tusd_py.hooks.throttle import ProgressThrottle
from tusd_py.hooks.webhook import WebhookClient, WebhookConfig, WebhookFailed
from tusd_py.telemetry import metrics

log = structlog.get_logger(__name__)


class _Failure(Exception):
    """A pre hook could not give a usable answer; ``rejection`` is what fail-closed sends."""

    def __init__(self, reason: str, rejection: HookRejection) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rejection = rejection


class HookDispatcher:
    def __init__(
        self,
        registry: HookRegistry | None = None,
        webhooks: Sequence[WebhookConfig] = (),
        *,
        throttle: ProgressThrottle | None = None,
        callable_timeout: float = 10.0,
        callables_fail_closed: bool = True,
        max_pending: int = 1000,
        durable: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.registry = registry if registry is not None else HookRegistry()
        self.webhooks = [WebhookClient(config, sleep=sleep) for config in webhooks]
        # Not `throttle or ...`: an empty ProgressThrottle has len 0 and is falsy.
        self.throttle = throttle if throttle is not None else ProgressThrottle()
        self.callable_timeout = callable_timeout
        self.callables_fail_closed = callables_fail_closed
        # Past this many running post-hook tasks, progress events are dropped (the final state
        # still arrives with post-finish); lifecycle events are always scheduled.
        self.max_pending = max_pending
        self.durable = durable
        self.webhook_configs = list(webhooks)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        metrics.setup_hook_metrics([str(hook_type) for hook_type in HookType])

    @property
    def pending(self) -> int:
        return len(self._tasks)

    # -- pre hooks ------------------------------------------------------------------------------
    async def run_pre_create(self, event: HookEvent) -> PreCreateResult:
        _expect(event, HookType.PRE_CREATE)
        event = with_request(event)
        change: HookChange | None = None
        for name, run, fail_closed in self._pre_targets(HookType.PRE_CREATE):
            try:
                result = await run(event)
            except _Failure as exc:
                if fail_closed:
                    return PreCreateResult(rejection=exc.rejection)
                continue
            if result.rejection is not None:
                log.info("pre-create hook rejected", target=name, status=result.rejection.status)
                return PreCreateResult(rejection=result.rejection)
            if result.change is not None:
                change = merge_changes(change, result.change)
                event = _with_change(event, result.change)
        return PreCreateResult(change=change)

    async def run_pre_finish(self, event: HookEvent) -> HookRejection | None:
        _expect(event, HookType.PRE_FINISH)
        return await self._first_rejection(event)

    async def run_pre_terminate(self, event: HookEvent) -> HookRejection | None:
        """A rejection keeps the upload: the DELETE gets the hook's status and message."""
        _expect(event, HookType.PRE_TERMINATE)
        return await self._first_rejection(event)

    def wants(self, hook_type: HookType) -> bool:
        return bool(self.registry.hooks(hook_type)) or any(client.wants(hook_type) for client in self.webhooks)

    async def _first_rejection(self, event: HookEvent) -> HookRejection | None:
        event = with_request(event)
        for name, run, fail_closed in self._pre_targets(event.type):
            try:
                result = await run(event)
            except _Failure as exc:
                if fail_closed:
                    return exc.rejection
                continue
            if result.rejection is not None:
                log.info("pre hook rejected", hook=str(event.type), target=name, status=result.rejection.status)
                return result.rejection
        return None

    def _pre_targets(
        self, hook_type: HookType
    ) -> list[tuple[str, Callable[[HookEvent], Awaitable[PreCreateResult]], bool]]:
        targets: list[tuple[str, Callable[[HookEvent], Awaitable[PreCreateResult]], bool]] = []
        for fn in self.registry.hooks(hook_type):
            targets.append(
                (_name(fn), _counted(_callable_runner(fn, self.callable_timeout)), self.callables_fail_closed)
            )
        for client in self.webhooks:
            if client.wants(hook_type):
                targets.append((client.target, _counted(_webhook_runner(client)), client.config.fail_closed))
        return targets

    # -- post hooks -----------------------------------------------------------------------------
    def emit(self, hook_type: HookType, event: HookEvent) -> None:
        """Schedule post hooks for ``event`` and return at once. Call from the event loop."""
        if hook_type not in POST_HOOKS:
            raise ValueError(f"{hook_type} is not a post hook; use run_pre_create / run_pre_finish")
        _expect(event, hook_type)
        event = with_request(event)
        upload = event.upload
        if hook_type is HookType.POST_RECEIVE:
            if not self.throttle.should_emit(upload.id, upload.offset, upload.length):
                return
            if len(self._tasks) >= self.max_pending and upload.offset != upload.length:
                log.warning("post-receive event dropped: too many pending hooks", upload_id=upload.id)
                return
        elif hook_type is HookType.POST_TERMINATE:
            self.throttle.forget(upload.id)
        if self._closed:
            log.warning("hook event dropped: dispatcher is shut down", hook=str(hook_type), upload_id=upload.id)
            return
        for fn in self.registry.hooks(hook_type):
            self._spawn(self._run_post_callable(fn, event))
        if self.durable:
            return  # webhooks get it from the outbox, written with the change it reports
        for client in self.webhooks:
            if client.wants(hook_type):
                self._spawn(self._run_post_webhook(client, event))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_post_callable(self, fn: AnyHook, event: HookEvent) -> None:
        try:
            await fn(event)
            metrics.record_hook(str(event.type), failed=False)
        except Exception:
            metrics.record_hook(str(event.type), failed=True)
            log.exception("post hook failed", hook=str(event.type), target=_name(fn), upload_id=event.upload.id)

    async def _run_post_webhook(self, client: WebhookClient, event: HookEvent) -> None:
        metrics.WEBHOOK_BACKLOG.inc()
        try:
            attempts = await client.deliver(event)
        except WebhookFailed as exc:
            metrics.record_hook(str(event.type), failed=True)
            metrics.record_webhook_delivery(str(event.type), "gave_up")
            log.error(
                "webhook gave up",
                hook=str(event.type),
                target=client.target,
                upload_id=event.upload.id,
                event_id=event.event_id,
                reason=exc.reason,
            )
        except Exception:
            metrics.record_hook(str(event.type), failed=True)
            metrics.record_webhook_delivery(str(event.type), "gave_up")
            log.exception("webhook delivery crashed", hook=str(event.type), target=client.target)
        else:
            metrics.record_hook(str(event.type), failed=False)
            metrics.record_webhook_delivery(str(event.type), "delivered")
            log.debug("webhook delivered", hook=str(event.type), target=client.target, attempts=attempts)
        finally:
            metrics.WEBHOOK_BACKLOG.dec()

    # -- shutdown -------------------------------------------------------------------------------
    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a grace period, not a call timeout
        """Stop taking events, wait up to ``timeout`` s for running post hooks, cancel the rest.

        Returns how many were cancelled (and logs them): those receivers never heard of an event.
        """
        self._closed = True
        pending = set(self._tasks)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("hooks cancelled at shutdown", count=len(pending))
        for client in self.webhooks:
            await client.close()
        return len(pending)


def _expect(event: HookEvent, hook_type: HookType) -> None:
    if event.type is not hook_type:
        raise ValueError(f"event of type {event.type} passed as {hook_type}")


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _counted(
    run: Callable[[HookEvent], Awaitable[PreCreateResult]],
) -> Callable[[HookEvent], Awaitable[PreCreateResult]]:
    async def counted(event: HookEvent) -> PreCreateResult:
        try:
            result = await run(event)
        except _Failure:
            metrics.record_hook(str(event.type), failed=True)
            raise
        metrics.record_hook(str(event.type), failed=False)
        return result

    return counted


def _callable_runner(fn: AnyHook, timeout: float) -> Callable[[HookEvent], Awaitable[PreCreateResult]]:
    async def run(event: HookEvent) -> PreCreateResult:
        hook = str(event.type)
        try:
            async with asyncio.timeout(timeout):
                result = await fn(event)
        except TimeoutError:
            log.error("pre hook timed out", hook=hook, target=_name(fn))
            raise _Failure("timed out", HookRejection(503, f"{hook} hook timed out")) from None
        except Exception:
            log.exception("pre hook failed", hook=hook, target=_name(fn))
            raise _Failure("raised", HookRejection(500, f"{hook} hook failed")) from None
        if result is None:
            return PreCreateResult()
        if isinstance(result, HookRejection):
            return PreCreateResult(rejection=result)
        if isinstance(result, PreCreateResult) and event.type is HookType.PRE_CREATE:
            return result
        log.error("pre hook returned a wrong type", hook=hook, target=_name(fn), type=type(result).__name__)
        raise _Failure("wrong result type", HookRejection(500, f"{hook} hook failed"))

    return run


def _webhook_runner(client: WebhookClient) -> Callable[[HookEvent], Awaitable[PreCreateResult]]:
    async def run(event: HookEvent) -> PreCreateResult:
        hook = str(event.type)
        try:
            reply = await client.call(event)
            if not client.tusd:
                return parse_reply(event.type, reply)
            outcome = tusd_format.parse_reply(event.type, reply)
            if outcome.ignored_storage:
                log.warning("ChangeFileInfo.Storage is not supported and was ignored", hook=hook, target=client.target)
            answer(outcome.response)
            answer(outcome.refusal, refusal=True)
            return outcome.result
        except WebhookFailed as exc:
            log.error("pre hook webhook failed", hook=hook, target=client.target, reason=exc.reason)
            if exc.unavailable:
                raise _Failure(exc.reason, HookRejection(503, f"{hook} hook is unavailable")) from None
            raise _Failure(exc.reason, HookRejection(502, f"{hook} hook gave an invalid answer")) from None
        except InvalidHookResult as exc:
            log.error("pre hook webhook answered invalidly", hook=hook, target=client.target, reason=str(exc))
            raise _Failure(str(exc), HookRejection(502, f"{hook} hook gave an invalid answer")) from None

    return run


def _with_change(event: HookEvent, change: HookChange) -> HookEvent:
    upload = event.upload
    if change.upload_id is not None:
        upload = msgspec.structs.replace(upload, id=change.upload_id)
    if change.metadata is not None:
        text, binary = split_metadata(change.metadata)
        upload = msgspec.structs.replace(upload, metadata=text, metadata_binary=binary)
    return msgspec.structs.replace(event, upload=upload)
