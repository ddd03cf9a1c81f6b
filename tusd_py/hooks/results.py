"""What pre-hooks may answer: a rejection, or (pre-create only) a change of id and metadata.

Both validate on construction, so an invalid answer from any hook (Python callable or decoded
webhook reply) is refused in one place and never reaches storage.
"""

from __future__ import annotations

import re

import msgspec

from tusd_py.hooks.events import Metadata
from tusd_py.model.errors import TusError
from tusd_py.model.upload import UPLOAD_ID, UploadInfo
from tusd_py.protocol.metadata import check_metadata as check_limits

# tus 1.0.0 Upload-Metadata: "The key MUST NOT contain spaces and commas and MUST NOT be empty".
METADATA_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]{1,256}")
MAX_MESSAGE_LENGTH = 1024


class InvalidHookResult(ValueError):
    """A hook answered something the server must not act on."""


class HookRejection(msgspec.Struct, frozen=True):
    """Answer the request with ``status`` and ``message`` (text/plain) instead of going on."""

    status: int
    message: str

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise InvalidHookResult(f"rejection status {self.status} is not 4xx or 5xx")
        if len(self.message) > MAX_MESSAGE_LENGTH:
            raise InvalidHookResult(f"rejection message is longer than {MAX_MESSAGE_LENGTH} characters")
        if not all(ch.isprintable() or ch in "\n\t" for ch in self.message):
            raise InvalidHookResult("rejection message contains control characters")


class HookChange(msgspec.Struct, frozen=True, kw_only=True):
    """A pre-create change. ``metadata``, when given, replaces the whole metadata (as tusd does)."""

    upload_id: str | None = None
    metadata: Metadata | None = None

    def __post_init__(self) -> None:
        if self.upload_id is not None and not UPLOAD_ID.fullmatch(self.upload_id):
            raise InvalidHookResult(f"changed upload id must match {UPLOAD_ID.pattern}")
        if self.metadata is not None:
            check_metadata(self.metadata)


def check_metadata(metadata: Metadata) -> None:
    for key, value in metadata.items():
        if not isinstance(key, str) or not METADATA_KEY.fullmatch(key):
            raise InvalidHookResult(f"metadata key {str(key)[:40]!r} is not printable ASCII without spaces")
        if value is not None and not isinstance(value, bytes):
            raise InvalidHookResult(f"metadata value of {key!r} must be bytes or None")
    try:
        check_limits(metadata)  # the limits a client's Upload-Metadata is held to
    except TusError as exc:
        raise InvalidHookResult(f"changed metadata: {exc.reason}") from None


class PreCreateResult(msgspec.Struct, frozen=True, kw_only=True):
    rejection: HookRejection | None = None
    change: HookChange | None = None

    def apply(self, info: UploadInfo) -> UploadInfo:
        """``info`` with the change applied (a copy; ``info`` is left alone)."""
        if self.change is None:
            return info
        return msgspec.structs.replace(
            info,
            id=self.change.upload_id if self.change.upload_id is not None else info.id,
            metadata=dict(self.change.metadata) if self.change.metadata is not None else info.metadata,
        )


def merge_changes(first: HookChange | None, then: HookChange | None) -> HookChange | None:
    """Several pre-create hooks run in turn; a later hook's change wins field by field."""
    if first is None or then is None:
        return then or first
    return HookChange(
        upload_id=then.upload_id if then.upload_id is not None else first.upload_id,
        metadata=then.metadata if then.metadata is not None else first.metadata,
    )
