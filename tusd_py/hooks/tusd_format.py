"""tusd v2's hook wire format (``--hooks-format tusd``): the request body a hook gets and what its
reply means. Pure: no I/O, so every rule is a unit test away.

The request is tusd's ``HookRequest`` (``{"Type", "Event": {"Upload", "HTTPRequest"}}``, pkg/hooks);
the reply is its ``HookResponse``. Replies are read the way Go's ``encoding/json`` reads them into
tusd's structs: keys match case-insensitively and unknown keys are ignored (tusd's own example
receiver sends ``"Headers"`` for ``"Header"``, and tusd ignores it). What each field does, per hook,
follows tusd's ``pkg/hooks/hooks.go`` and ``pkg/handler``:

- ``HTTPResponse`` (``StatusCode``, ``Body``, ``Header``) is merged into the response of the request
  that ran a pre-create, pre-finish or pre-terminate hook: a non-zero status, a non-empty body and
  each header replace ours. With ``RejectUpload`` / ``RejectTermination`` (and ``StopUpload``) it is
  merged into tusd's error response for that case instead.
- ``RejectUpload`` (pre-create) refuses the creation; ``RejectTermination`` (pre-terminate) keeps the
  upload; ``StopUpload`` (post-receive) ends the upload and deletes it.
- ``ChangeFileInfo`` (pre-create): ``ID`` when not empty, ``MetaData`` when not null (it replaces
  the whole metadata). ``Storage`` is read and not acted on, as tusd's S3 store does (see WEBHOOKS.md).
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from storage_backends.file_sweep import INFO_SUFFIX
from tusd_py.hooks.events import HookEvent, HookType, HTTPRequestFacts
from tusd_py.hooks.results import HookChange, HookRejection, InvalidHookResult, PreCreateResult

# Request headers left out of events kept in the outbox (post-*), unless --hooks-forward-headers
# names them: a database row that lives for days is no place for a bearer token.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

MAX_BODY = 64 * 1024  # a hook's response body for the client; tusd's whole reply is 5 KiB by default


class ResponsePatch(msgspec.Struct, frozen=True, kw_only=True):
    """tusd's ``HTTPResponse``: what a hook puts into the client's response. 0 / "" leave ours."""

    status: int = 0
    body: str = ""
    headers: dict[str, str] = msgspec.field(default_factory=dict)

    def merge(self, then: ResponsePatch) -> ResponsePatch:
        """tusd's ``MergeWith``: ``then``'s non-default values win, headers one by one."""
        return ResponsePatch(
            status=then.status or self.status,
            body=then.body or self.body,
            headers={**self.headers, **then.headers},
        )


def tusd_error(code: str, message: str, status: int = 400) -> ResponsePatch:
    """tusd's ``NewError``: the response of one of its named errors."""
    return ResponsePatch(
        status=status, body=f"{code}: {message}\n", headers={"Content-Type": "text/plain; charset=utf-8"}
    )


UPLOAD_REJECTED = tusd_error("ERR_UPLOAD_REJECTED", "upload creation has been rejected by server")
TERMINATION_REJECTED = tusd_error("ERR_UPLOAD_TERMINATION_REJECTED", "upload termination has been rejected by server")
UPLOAD_STOPPED = tusd_error("ERR_UPLOAD_STOPPED", "upload has been stopped by server")


class TusdOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one tusd reply does. ``result`` feeds the dispatcher like any hook's answer;
    ``response`` goes into the client's response when the request succeeds; ``refusal`` replaces
    the response of the request the hook refused (or, for post-receive, stopped)."""

    result: PreCreateResult = msgspec.field(default_factory=PreCreateResult)
    response: ResponsePatch | None = None
    refusal: ResponsePatch | None = None
    stop: bool = False
    ignored_storage: bool = False  # ChangeFileInfo.Storage was set (logged: not supported)


# -- the request ---------------------------------------------------------------------------------
def request_body(event: HookEvent, *, durable: bool, forwarded: frozenset[str] = frozenset()) -> bytes:
    """The JSON tusd sends for ``event``. ``durable``: the body is kept in the outbox, so
    credential headers are left out unless ``forwarded`` (lower-case names) lists them."""
    body: dict[str, Any] = {
        "Type": str(event.type),
        "Event": {"Upload": _upload(event), "HTTPRequest": _http_request(event.http_request, durable, forwarded)},
    }
    if event.process is not None:  # post-process is ours: tusd has no such hook, nor field
        body["Process"] = {
            "Status": event.process.status,
            "Results": event.process.results,
            "Error": event.process.error,
        }
    return msgspec.json.encode(body)


def _upload(event: HookEvent) -> dict[str, Any]:
    upload = event.upload
    metadata: dict[str, str] = {key: value or "" for key, value in upload.metadata.items()}
    for key, value in upload.metadata_binary.items():
        # tusd decodes metadata into Go strings, which JSON encoding turns into UTF-8 with U+FFFD
        # for each invalid byte. tusd-py's own format keeps such values exact (metadata_binary).
        metadata[key] = base64.b64decode(value).decode("utf-8", errors="replace")
    return {
        "ID": "" if event.type is HookType.PRE_CREATE else upload.id,  # tusd: no id before creation
        "Size": upload.length or 0,
        "SizeIsDeferred": upload.length is None,
        "Offset": upload.offset,
        "MetaData": metadata,
        "IsPartial": upload.concat == "partial",
        "IsFinal": upload.concat == "final",
        "PartialUploads": list(upload.partials) if upload.concat == "final" else None,
        "Storage": _storage(upload.storage),
    }


def _storage(storage: dict[str, str] | None) -> dict[str, str] | None:
    if storage is None:
        return None
    if storage.get("type") == "filesystem":
        path = storage["path"]
        return {"Type": "filestore", "Path": path, "InfoPath": path + INFO_SUFFIX}
    if storage.get("type") == "s3":
        return {"Type": "s3store", "Bucket": storage["bucket"], "Key": storage["key"]}
    return {key.capitalize(): value for key, value in storage.items()}


def _http_request(facts: HTTPRequestFacts | None, durable: bool, forwarded: frozenset[str]) -> dict[str, Any]:
    if facts is None:  # no request behind the event (post-process, the expiry sweep)
        return {"Method": "", "URI": "", "RemoteAddr": "", "Header": {}}
    header = {
        name: values
        for name, values in facts.header.items()
        if not (durable and name.lower() in CREDENTIAL_HEADERS and name.lower() not in forwarded)
    }
    return {"Method": facts.method, "URI": facts.uri, "RemoteAddr": facts.remote_addr, "Header": header}


def canonical_header_key(name: str) -> str:
    """Go's ``http.CanonicalHeaderKey``: tusd's receivers look headers up by this spelling."""
    if not _token(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def forwarded_values(body: bytes, names: list[str]) -> dict[str, str]:
    """The headers tusd's ``-hooks-http-forward-headers`` sets on the hook request, read back from
    a request body (the outbox keeps bodies, not requests); repeated values joined with ``, ``."""
    try:
        header = msgspec.json.decode(body)["Event"]["HTTPRequest"]["Header"]
    except (msgspec.DecodeError, KeyError, TypeError):
        return {}
    found: dict[str, str] = {}
    for name in names:
        values = header.get(canonical_header_key(name)) if isinstance(header, dict) else None
        if isinstance(values, list) and values:
            found[name] = ", ".join(str(value) for value in values)
    return found


# -- the reply -----------------------------------------------------------------------------------
def parse_reply(hook_type: HookType, body: bytes) -> TusdOutcome:
    """What a tusd-format reply does for ``hook_type``. An empty body is ``{}`` (changes nothing).

    Raises :class:`InvalidHookResult` for what tusd would fail on too (not JSON, wrong types) and
    for changes tusd-py cannot store (an id outside ``[A-Za-z0-9_-]{1,128}``, bad metadata).
    """
    if not body.strip():
        return TusdOutcome()
    try:
        reply = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise InvalidHookResult("reply is not JSON") from None
    fields = _fields(reply, "reply")
    response = _response(fields.get("httpresponse"))
    if hook_type is HookType.PRE_CREATE:
        if _flag(fields, "rejectupload"):
            return _refused(UPLOAD_REJECTED.merge(response), "pre-create hook rejected the upload")
        change, ignored_storage = _change(fields.get("changefileinfo"))
        return TusdOutcome(result=PreCreateResult(change=change), response=response, ignored_storage=ignored_storage)
    if hook_type is HookType.PRE_TERMINATE:
        if _flag(fields, "rejecttermination"):
            return _refused(TERMINATION_REJECTED.merge(response), "pre-terminate hook rejected the termination")
        return TusdOutcome(response=response)
    if hook_type is HookType.PRE_FINISH:
        return TusdOutcome(response=response)  # tusd's pre-finish cannot refuse, only shape the answer
    if hook_type is HookType.POST_RECEIVE and _flag(fields, "stopupload"):
        return TusdOutcome(refusal=UPLOAD_STOPPED.merge(response), stop=True)
    return TusdOutcome()  # other post-* replies are ignored, as in tusd


def _refused(response: ResponsePatch, message: str) -> TusdOutcome:
    # The rejection's status is the one the client gets (tusd sends whatever the hook set, even a
    # 2xx); HookRejection wants an error status for the log and for callers without the middleware.
    status = response.status if 400 <= response.status <= 599 else 400
    return TusdOutcome(result=PreCreateResult(rejection=HookRejection(status, message)), refusal=response)


def _fields(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidHookResult(f"{where} is not a JSON object")
    return {str(key).lower(): item for key, item in value.items()}


def _flag(fields: dict[str, Any], name: str) -> bool:
    value = fields.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidHookResult(f"{name} is not a boolean")
    return value


def _response(value: object) -> ResponsePatch:
    fields = _fields(value, "HTTPResponse")
    status = fields.get("statuscode") or 0
    body = fields.get("body") or ""
    headers = fields.get("header") or {}
    if not isinstance(status, int) or isinstance(status, bool) or not (status == 0 or 100 <= status <= 599):
        raise InvalidHookResult("HTTPResponse.StatusCode is not an HTTP status")
    if not isinstance(body, str) or len(body) > MAX_BODY:
        raise InvalidHookResult(f"HTTPResponse.Body is not a string of at most {MAX_BODY} characters")
    if not isinstance(headers, dict):
        raise InvalidHookResult("HTTPResponse.Header is not a JSON object")
    for name, item in headers.items():
        # A CR or LF would let a hook split the response: refused, like any name that is not a token.
        if not _token(name) or not isinstance(item, str) or any(ord(ch) < 0x20 and ch != "\t" for ch in item):
            raise InvalidHookResult(f"HTTPResponse.Header {str(name)[:40]!r} is not a valid header")
    return ResponsePatch(status=status, body=body, headers=dict(headers))


def _token(text: str) -> bool:
    return bool(text) and all(ch.isascii() and (ch.isalnum() or ch in "!#$%&'*+-.^_`|~") for ch in text)


def _change(value: object) -> tuple[HookChange | None, bool]:
    fields = _fields(value, "ChangeFileInfo")
    upload_id = fields.get("id") or None
    if upload_id is not None and not isinstance(upload_id, str):
        raise InvalidHookResult("ChangeFileInfo.ID is not a string")
    metadata = fields.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str | None) for v in metadata.values()):
            raise InvalidHookResult("ChangeFileInfo.MetaData is not an object of strings")
        # Go's map[string]string: a null value decodes to "".
        metadata = {str(key): (item or "").encode() for key, item in metadata.items()}
    storage = fields.get("storage")
    if upload_id is None and metadata is None:
        return None, storage is not None
    return HookChange(upload_id=upload_id, metadata=metadata), storage is not None
