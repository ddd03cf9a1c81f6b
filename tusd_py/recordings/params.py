"""Query parameters of the Recordings API: pure parsing, a 400 with a reason for anything else.

Plain functions over the raw strings, no aiohttp, so each rule is a unit test away. The bounds
are published in the OpenAPI document from the same constants.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence

from tusd_py.model.error_codes import ErrorCode
from tusd_py.model.errors import TusError
from tusd_py.pipeline.states import Status


def invalid(reason: str) -> TusError:
    return TusError(400, reason, code=ErrorCode.INVALID_PARAMETER)


MIN_LIMIT = 1
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
DEFAULT_QUEUE_LIMIT = 100
#: Longer than any real grace period; keeps ``days * 86400`` far from float trouble.
MAX_DAYS = 36500.0


def check_known(names: Iterable[str], known: Collection[str]) -> None:
    """Only the query parameters an operation documents: ``?stauts=failed`` is a 400, not every status."""
    for name in names:
        if name not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise invalid(f"unknown query parameter {name[:40]!r}; this operation takes: {takes}")


def parse_statuses(values: Sequence[str]) -> list[Status] | None:
    """``?status=failed,processing`` (comma-separated, or repeated): the statuses wanted; None for all."""
    if not values:
        return None
    wanted: list[Status] = []
    for value in values:
        for name in value.split(","):
            try:
                status = Status(name.strip())
            except ValueError:
                known = ", ".join(s.value for s in Status)
                raise invalid(f"unknown status {name[:40]!r}; one of: {known}") from None
            if status not in wanted:
                wanted.append(status)
    return wanted


def parse_limit(value: str | None, default: int = DEFAULT_LIMIT) -> int:
    if value is None:
        return default
    # Plain ASCII digits only ("+5", " 5", "5.0" are refused); short, so int() stays cheap.
    digits = value.isascii() and value.isdigit() and len(value) <= 6
    limit = int(value) if digits else 0
    if not MIN_LIMIT <= limit <= MAX_LIMIT:
        raise invalid(f"limit must be an integer from {MIN_LIMIT} to {MAX_LIMIT}")
    return limit


def parse_cursor(value: str | None) -> str | None:
    """The store checks the cursor's form (``CURSOR_PATTERN``, published in the OpenAPI document)."""
    if value is None:
        return None
    if not value:
        raise invalid("cursor must not be empty; omit it for the first page")
    return value


def parse_days(value: str | None, default: float) -> float:
    """``older_than_days``; ``default`` (the server's cleanup setting) when absent.

    A default of 0 means the server never cleans up on its own; the API then asks for the number
    rather than read 0 as "every failed recording, however recent".
    """
    if value is None:
        if default <= 0:
            raise invalid("older_than_days is required: automatic cleanup is off on this server")
        return default
    try:
        days = float(value)
    except ValueError:
        days = math.nan
    if not 0 <= days <= MAX_DAYS:  # also false for NaN
        raise invalid(f"older_than_days must be a number from 0 to {MAX_DAYS:g}")
    return days
