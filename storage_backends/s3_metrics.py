"""S3 requests by operation and outcome, with latency, from botocore's own events.

botocore emits ``before-call`` once per API call (retries included inside it), then
``after-call`` with the HTTP response or ``after-call-error`` when no response came (a refused
connection, a timeout). The start time rides in the call's context, so concurrent calls never mix.
"""

from __future__ import annotations

import time
from typing import Any

from tusd_py.telemetry import metrics

_STARTED = "tusd_py_metrics_started"


def outcome_of(status: int | None) -> str:
    """A bounded label: ok, 4xx, 5xx, or network (no HTTP answer at all)."""
    if status is None:
        return "network"
    if status < 300:
        return "ok"
    return "4xx" if status < 500 else "5xx"


def instrument(client: Any) -> None:
    events = client.meta.events
    events.register("before-call.s3", _before)
    events.register("after-call.s3", _after)
    events.register("after-call-error.s3", _after_error)


def _before(model: Any, context: dict[str, Any], **_: Any) -> None:
    context[_STARTED] = (model.name, time.perf_counter())


def _after(http_response: Any, context: dict[str, Any], **_: Any) -> None:
    _record(context, getattr(http_response, "status_code", None))


def _after_error(context: dict[str, Any], **_: Any) -> None:
    _record(context, None)


def _record(context: dict[str, Any], status: int | None) -> None:
    started = context.pop(_STARTED, None)
    if started is None:
        return
    operation, began = started
    metrics.S3_REQUESTS.labels(operation, outcome_of(status)).inc()
    metrics.S3_DURATION.labels(operation).observe(time.perf_counter() - began)
