"""Hook types and the event every hook receives (the JSON body webhooks get).

Metadata values are bytes in tus (base64 on the wire, possibly binary). Events carry them as
text where they are valid UTF-8 (``metadata``) and as base64 otherwise (``metadata_binary``), so
a receiver never has to guess which encoding a string is in: a key appears in exactly one map.
"""

from __future__ import annotations

import base64
import enum
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from tusd_py.model.upload import ConcatRole, UploadInfo
from tusd_py.protocol.metadata import as_text

Metadata = dict[str, bytes | None]


class HookType(enum.StrEnum):
    PRE_CREATE = "pre-create"
    POST_CREATE = "post-create"
    POST_RECEIVE = "post-receive"
    PRE_FINISH = "pre-finish"
    POST_FINISH = "post-finish"
    PRE_TERMINATE = "pre-terminate"
    POST_TERMINATE = "post-terminate"
    POST_PROCESS = "post-process"  # post-finish processing ended: completed (with results) or failed

    @property
    def is_pre(self) -> bool:
        return self.value.startswith("pre-")


PRE_HOOKS = frozenset(t for t in HookType if t.is_pre)
POST_HOOKS = frozenset(t for t in HookType if not t.is_pre)


class UploadSnapshot(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    length: int | None  # null while the length is deferred
    offset: int
    metadata: dict[str, str | None]  # UTF-8 values as text; null for a key sent without a value
    metadata_binary: dict[str, str]  # values that are not UTF-8, standard base64
    owner: str | None
    concat: ConcatRole | None
    partials: list[str]
    sha256: str | None  # set once post-finish processing computed it: null in events fired at finish
    # Where the bytes are, from the backend (DataStore.location): {"type": "filesystem", "path": ...}
    # or {"type": "s3", "bucket": ..., "key": ...}; null before the upload exists (pre-create).
    storage: dict[str, str] | None = None

    def metadata_bytes(self) -> Metadata:
        """The metadata as tus stores it (bytes), e.g. to compare with a hook's change."""
        result: Metadata = {k: None if v is None else v.encode() for k, v in self.metadata.items()}
        result.update({k: base64.b64decode(v) for k, v in self.metadata_binary.items()})
        return result


class ProcessOutcome(msgspec.Struct, kw_only=True, frozen=True):
    """What post-finish processing came to (post-process events only)."""

    status: str  # "completed" or "failed" (the recording's final status)
    results: dict[str, Any]  # step name -> its result (digest, analysis); empty when failed
    error: str | None  # the last attempt's error when failed


class HTTPRequestFacts(msgspec.Struct, kw_only=True, frozen=True):
    """The request behind an event, as tusd's hook requests carry it (``--hooks-format tusd``).
    Not part of tusd-py's own wire format, which sends only ``--hooks-forward-headers``."""

    method: str  # the effective method (X-HTTP-Method-Override applied), as tusd reports it
    uri: str  # path and query as requested
    remote_addr: str  # "ip:port" of the peer (a proxy's, behind one)
    header: dict[str, list[str]]  # every request header, names as Go canonicalizes them, Host included


class HookEvent(msgspec.Struct, kw_only=True, frozen=True):
    type: HookType
    event_id: str  # unique per event, the same across retries: receivers deduplicate on it
    timestamp: float  # unix seconds when the event was built
    upload: UploadSnapshot
    user_id: str | None
    request_id: str | None
    # The request headers named by --hooks-forward-headers (lower-case names); empty outside a request.
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    process: ProcessOutcome | None = None
    # The request that caused it (None outside a request); sent only in tusd's format.
    http_request: HTTPRequestFacts | None = None


def encode_event(event: HookEvent) -> bytes:
    """tusd-py's own wire format (WEBHOOKS.md): the event without ``http_request``."""
    fields = msgspec.structs.asdict(event)
    del fields["http_request"]
    return msgspec.json.encode(fields)


def split_metadata(metadata: Metadata) -> tuple[dict[str, str | None], dict[str, str]]:
    text: dict[str, str | None] = {}
    binary: dict[str, str] = {}
    for key, value in metadata.items():
        decoded = None if value is None else as_text(value)
        if value is not None and decoded is None:
            binary[key] = base64.b64encode(value).decode("ascii")
        else:
            text[key] = decoded
    return text, binary


def snapshot(info: UploadInfo, storage: dict[str, str] | None = None) -> UploadSnapshot:
    text, binary = split_metadata(info.metadata)
    return UploadSnapshot(
        id=info.id,
        length=info.length,
        offset=info.offset,
        metadata=text,
        metadata_binary=binary,
        owner=info.owner,
        concat=info.concat,
        partials=list(info.partials),
        sha256=info.sha256,
        storage=storage,
    )


def build_event(
    hook_type: HookType,
    info: UploadInfo,
    *,
    user_id: str | None,
    request_id: str | None,
    storage: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    process: ProcessOutcome | None = None,
    clock: Callable[[], float] = time.time,
) -> HookEvent:
    return HookEvent(
        type=hook_type,
        event_id=uuid.uuid4().hex,
        timestamp=clock(),
        upload=snapshot(info, storage),
        user_id=user_id,
        request_id=request_id,
        headers=dict(headers or {}),
        process=process,
    )
