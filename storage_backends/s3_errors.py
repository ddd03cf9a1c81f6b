"""Mapping S3 / botocore failures to the storage errors the core understands.

- unreachable endpoint, timeouts, dropped connections, 5xx and throttling -> StorageUnavailable
  (503: the client retries and resumes from the durable offset, which nothing advanced);
- anything else (403, misconfiguration, malformed state) -> StorageError (500).

``NoSuchKey`` / ``NoSuchUpload`` are decided by the caller, who knows what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from tusd_py.model.storage_errors import StorageError, StorageUnavailable

_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
_RETRYABLE = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling", "ThrottlingException"}
)


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def http_status(exc: BaseException) -> int | None:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in _NOT_FOUND


def is_no_such_upload(exc: BaseException) -> bool:
    return error_code(exc) == "NoSuchUpload"


def is_precondition_failed(exc: BaseException) -> bool:
    return error_code(exc) in {"PreconditionFailed", "412"} or http_status(exc) == 412


def translate(exc: BaseException, doing: str) -> StorageError:
    """The storage error for a failed S3 call; ``doing`` says what we were doing, for the log."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageError(f"S3 {doing}: no usable AWS credentials ({exc})")
    if isinstance(exc, ClientError):
        status = http_status(exc) or 0
        code = error_code(exc)
        if status >= 500 or code in _RETRYABLE:
            return StorageUnavailable(f"S3 {doing}: temporarily unavailable ({code}, HTTP {status})")
        return StorageError(f"S3 {doing} failed: {code} (HTTP {status}): {exc}")
    # Connection refused, DNS, timeouts, a connection dropped mid-body: all transient from our side.
    if isinstance(exc, TimeoutError | BotoCoreError | aiohttp.ClientError | OSError):
        return StorageUnavailable(f"S3 {doing}: cannot reach the S3 endpoint ({type(exc).__name__}: {exc})")
    return StorageError(f"S3 {doing} failed: {type(exc).__name__}: {exc}")


@contextmanager
def s3_call(doing: str) -> Iterator[None]:
    """Translate whatever an S3 call raises (except our own storage errors) into a storage error."""
    try:
        yield
    except StorageError:
        raise
    except (TimeoutError, ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
        raise translate(exc, doing) from exc
