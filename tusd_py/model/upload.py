"""An upload as every layer sees it: its id rule, its state (:class:`UploadInfo`) and how a body ends.

The values the protocol rules, the operation layer and the storage backends all speak; they
depend on nothing of the server, so any layer may import them.
"""

from __future__ import annotations

import enum
import re
import time
from typing import Literal

import msgspec

ConcatRole = Literal["partial", "final"]


#: What an upload id is, everywhere: URL segment, file name, S3 key part. URL-safe and short, so an id
#: from a request, a hook or a listing can be used as a name without escaping.
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class UploadInfo(msgspec.Struct, kw_only=True):
    """Everything the server knows about one upload, persisted by the backend.

    ``offset`` is authoritative only as returned by :meth:`DataStore.get_info`: a backend derives
    it from what is durably stored (file size, S3 part ledger), never from an optimistic counter,
    so a crash can never make HEAD report bytes that are not there.
    """

    id: str
    length: int | None  # None while the length is deferred (creation-defer-length)
    offset: int = 0
    metadata: dict[str, bytes | None] = msgspec.field(default_factory=dict)
    owner: str | None = None
    created_at: float = msgspec.field(default_factory=time.time)
    updated_at: float = msgspec.field(default_factory=time.time)
    concat: ConcatRole | None = None
    partials: list[str] = msgspec.field(default_factory=list)  # ids, in order, for a final upload
    finished_at: float | None = None
    sha256: str | None = None  # hex digest of the whole upload, set when it finishes
    # A pre-finish hook refused it: finished (its bytes stay, nothing re-runs it), never processed.
    finish_refused: bool = False
    # Free-form state owned by the backend (e.g. S3 multipart id and part ledger). The core never reads it.
    backend_state: dict[str, object] = msgspec.field(default_factory=dict)

    @property
    def remaining(self) -> int | None:
        return None if self.length is None else self.length - self.offset


class EndReason(enum.StrEnum):
    """Why a body's chunks stopped before the body did."""

    CLIENT_GONE = "client gone"  # the connection broke or the client stopped sending mid-body
    IDLE = "idle"  # nothing arrived for the idle timeout
    TOO_LONG = "too long"  # more bytes than the upload may still hold (its length or a quota)
    HANDED_OVER = "handed over"  # a newer request for the upload asked for its lock


class BodyEnded(Exception):
    """Raised by the chunk iterator :meth:`DataStore.write` consumes when the body ends early.

    The one value a backend sees about the body: it keeps the bytes that arrived (unless the write
    verifies) and lets this propagate. Only the service maps ``reason`` to an HTTP status.
    """

    def __init__(self, reason: EndReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
