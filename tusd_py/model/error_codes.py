"""The catalog of named error codes: one name per kind of refusal, like tusd's named errors. Pure.

A code names *what* went wrong in a stable, machine-readable way; the reason (free text) says it to
a person. The code is the ``code`` label of ``tusd_errors_total``, a field of the request's log
line, and, where a problem document is sent (the Recordings API, RFC 9457), its ``type``
(:func:`problem_type`). tus responses keep their plain-text reasons: tus clients read the status.

An error raised without a code gets the default for its status (:data:`BY_STATUS`), so every
response has one and the set of label values stays bounded.
"""

from __future__ import annotations

import enum

#: Problem types are URNs: stable names that resolve nowhere, so no document can go stale.
PROBLEM_TYPE_PREFIX = "urn:tusd-py:problem:"


class ErrorCode(enum.StrEnum):
    # 4xx: the request
    BAD_REQUEST = "bad-request"
    INVALID_PARAMETER = "invalid-parameter"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    API_REFUSED_WITHOUT_AUTH = "api-refused-without-auth"
    HOOK_REJECTED = "hook-rejected"
    NOT_FOUND = "not-found"
    UPLOAD_NOT_FOUND = "upload-not-found"
    RECORDING_NOT_FOUND = "recording-not-found"
    SWITCHED_OFF = "switched-off"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    CONFLICT = "conflict"
    GONE = "gone"
    PRECONDITION_FAILED = "precondition-failed"
    TOO_LARGE = "too-large"
    QUOTA_EXCEEDED = "quota-exceeded"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    CHECKSUM_MISMATCH = "checksum-mismatch"
    UPLOAD_LOCKED = "upload-locked"
    RATE_LIMITED = "rate-limited"
    # 5xx: the server or what it depends on
    INTERNAL_ERROR = "internal-error"
    NOT_IMPLEMENTED = "not-implemented"
    STORAGE_ERROR = "storage-error"
    STORAGE_UNAVAILABLE = "storage-unavailable"
    STORAGE_FULL = "storage-full"
    STATE_STORE_UNAVAILABLE = "state-store-unavailable"
    LOCK_SERVICE_UNAVAILABLE = "lock-service-unavailable"
    UNAVAILABLE = "unavailable"


BY_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    410: ErrorCode.GONE,
    412: ErrorCode.PRECONDITION_FAILED,
    413: ErrorCode.TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    423: ErrorCode.UPLOAD_LOCKED,
    429: ErrorCode.RATE_LIMITED,
    460: ErrorCode.CHECKSUM_MISMATCH,
    500: ErrorCode.INTERNAL_ERROR,
    501: ErrorCode.NOT_IMPLEMENTED,
    503: ErrorCode.UNAVAILABLE,
    507: ErrorCode.STORAGE_FULL,
}


def default_code(status: int) -> ErrorCode:
    """The code of an error that names none: by its status, else by its class of status."""
    return BY_STATUS.get(status, ErrorCode.BAD_REQUEST if status < 500 else ErrorCode.INTERNAL_ERROR)


def problem_type(code: str) -> str:
    return PROBLEM_TYPE_PREFIX + code
