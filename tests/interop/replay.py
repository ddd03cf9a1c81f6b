"""The request sequences of native tus clients, as data, and a small executor that replays them.

The native clients (TUSKit on iOS, tus-java-client on the JVM, tus-android-client on Android) cannot run
here, so their wire behaviour is written down from their source (see CLIENTS.md for the file and version
behind each fact) and replayed over http.client against a base URL:

    from replay import SEQUENCES, replay
    result = replay("http://127.0.0.1:8080/files/", SEQUENCES["tus-java-client-0.5.1-jvm"]["upload"],
                    payload, extra_headers={"Authorization": "Bearer ..."})
    assert result.ok, result.describe()

Header values may hold the placeholders {offset} (the upload offset the client believes), {size} and
{metadata} (the client's Upload-Metadata encoding of `filename`); bodies are slices of the payload
starting at the current offset. Headers a platform's HTTP stack adds on its own (User-Agent, Accept)
are included where known, because servers and proxies do see them.
"""

from __future__ import annotations

import base64
import http.client
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urljoin, urlsplit

REST = -1  # body size meaning "everything from the current offset to the end"
Framing = Literal["none", "content-length", "chunked"]
Target = Literal["endpoint", "upload"]


@dataclass(frozen=True)
class Step:
    """One HTTP request a client sends (or a loop of them, see `until_complete`)."""

    name: str
    method: str
    target: Target
    headers: tuple[tuple[str, str], ...]
    body: int | None = None  # bytes from the current offset; None: no body; REST: to the end
    framing: Framing = "none"
    write_size: int = 64 * 1024  # how the client hands the body to its socket (chunk sizes when chunked)
    expect: tuple[int, ...] = (200, 201, 204)
    until_complete: bool = False  # repeat (bounded) until the offset reaches the size
    cut_after: int | None = None  # send only this many body bytes, then close the connection
    retry_on: tuple[int, ...] = ()  # statuses the client retries this step on
    retry_delays: tuple[float, ...] = ()  # seconds before each retry, as the client waits
    offset_from_any_status: bool = False  # the client reads Upload-Offset whatever the status (TUSKit)


@dataclass
class StepOutcome:
    name: str
    method: str
    url: str
    status: int | None  # None: the step dropped the connection on purpose (cut_after)
    headers_sent: dict[str, str]
    body_bytes: int
    response_headers: dict[str, str] = field(default_factory=dict)
    expected: bool = True


@dataclass
class ReplayResult:
    upload_url: str | None
    offset: int
    size: int
    outcomes: list[StepOutcome]

    @property
    def ok(self) -> bool:
        return all(o.expected for o in self.outcomes) and self.offset == self.size

    def describe(self) -> str:
        lines = [f"upload_url={self.upload_url} offset={self.offset}/{self.size}"]
        for o in self.outcomes:
            mark = "" if o.expected else "  <-- unexpected"
            lines.append(f"{o.name}: {o.method} {o.url} [{o.body_bytes} B] -> {o.status}{mark}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Metadata encodings (what each client puts in Upload-Metadata for a filename)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def tuskit_metadata(filename: str, mime_type: str | None = "application/octet-stream") -> str:
    # TUSKit: filename = last path component, filetype = MIME type guessed from the extension, values
    # base64 of UTF-8; pair order follows a Swift Dictionary, so it varies between runs.
    pairs = [f"filename {_b64(filename)}"]
    if mime_type:
        pairs.append(f"filetype {_b64(mime_type)}")
    return ",".join(pairs)


def java_metadata(filename: str) -> str:
    # tus-java-client: TusUpload(File) puts only "filename"; the value is the platform charset's bytes
    # (UTF-8 on Android and on JDK 18+), base64 by its own encoder (standard alphabet, padded).
    return f"filename {_b64(filename)}"


# ----------------------------------------------------------------------------------------------
# The sequences

TUS = ("Tus-Resumable", "1.0.0")
TUSKIT_TUS = ("TUS-Resumable", "1.0.0")  # TUSKit's own spelling; header names are case-insensitive
OCTETS = ("Content-Type", "application/offset+octet-stream")

TUSKIT_DEFAULTS = (("Accept", "*/*"), ("User-Agent", "TUSKitExample/1 CFNetwork/1496.0.7 Darwin/23.5.0"))
JVM_DEFAULTS = (("User-Agent", "Java/17.0.12"), ("Accept", "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2"))
ANDROID_DEFAULTS = (
    ("User-Agent", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A)"),
    ("Accept-Encoding", "gzip"),
)

TUSKIT_CHUNK = 500 * 1024  # TUSClient's default chunkSize
JAVA_REQUEST_PAYLOAD = 10 * 1024 * 1024  # TusUploader.requestPayloadSize default
JAVA_BUFFER = 2 * 1024 * 1024  # TusUploader default chunk (buffer) size
ANDROID_BUFFER = 1024 * 1024  # the example app's setChunkSize(1 MiB)


def _tuskit(cut: int | None) -> dict[str, tuple[Step, ...]]:
    create = Step(
        "create",
        "POST",
        "endpoint",
        (TUSKIT_TUS, ("Upload-Length", "{size}"), ("Upload-Metadata", "{metadata}"), *TUSKIT_DEFAULTS),
        expect=(201,),
        retry_on=(500, 502, 503, 504),
        retry_delays=(0.0, 0.0),  # TUSKit re-schedules a failed task at once, at most twice
    )
    patch = Step(
        "patch",
        "PATCH",
        "upload",
        (TUSKIT_TUS, OCTETS, ("Upload-Offset", "{offset}"), *TUSKIT_DEFAULTS),
        body=TUSKIT_CHUNK,
        framing="content-length",
        expect=(204,),
        until_complete=True,
        retry_on=(409, 423, 500, 502, 503, 504),
        retry_delays=(0.0, 0.0),
    )
    head = Step("status", "HEAD", "upload", (TUSKIT_TUS, *TUSKIT_DEFAULTS), expect=(200,), retry_delays=(0.0, 0.0))
    return {
        "upload": (create, patch),
        # After a failure that exhausted the in-task retries, the next start()/resume(id:) runs a
        # StatusTask (HEAD) for the stored remoteDestination, then chunked PATCHes from its offset.
        "resume-after-cut": (
            create,
            replace(patch, name="patch-cut", until_complete=False, cut_after=cut),
            head,
            patch,
        ),
        # The in-process retry: the failed UploadDataTask is re-queued as it was, so the same PATCH goes
        # out again with the old Upload-Offset and no HEAD first. Its file-upload path reads
        # Upload-Offset from the response without looking at the status, so it only recovers when the
        # server's 409 carries the current Upload-Offset.
        "retry-after-cut": (
            create,
            replace(patch, name="patch-cut", until_complete=False, cut_after=cut),
            replace(patch, name="patch-retry", until_complete=False, expect=(204, 409), offset_from_any_status=True),
            patch,
        ),
    }


def _java(
    method_override: bool, buffer: int, defaults: tuple[tuple[str, str], ...], cut: int | None
) -> dict[str, tuple[Step, ...]]:
    create = Step(
        "create",
        "POST",
        "endpoint",
        (TUS, ("Upload-Metadata", "{metadata}"), ("Upload-Length", "{size}"), *defaults),
        expect=(201,),
        retry_on=(423, 500, 502, 503, 504),
        retry_delays=(0.5, 1.0, 2.0, 3.0),  # TusExecutor's default delays
    )
    patch_headers: tuple[tuple[str, str], ...] = (
        TUS,
        ("Upload-Offset", "{offset}"),
        OCTETS,
        ("Expect", "100-continue"),
        *defaults,
    )
    if method_override:
        # A JDK HttpURLConnection refuses setRequestMethod("PATCH"), so the client falls back to POST.
        patch_headers = (*patch_headers, ("X-HTTP-Method-Override", "PATCH"))
    patch = Step(
        "patch",
        "POST" if method_override else "PATCH",
        "upload",
        patch_headers,
        body=JAVA_REQUEST_PAYLOAD,
        framing="chunked",  # setChunkedStreamingMode(0): no Content-Length
        write_size=buffer,
        expect=(204,),
        until_complete=True,
        retry_on=(423, 500, 502, 503, 504),
        retry_delays=(0.5, 1.0, 2.0, 3.0),
    )
    head = Step(
        "resume-head",
        "HEAD",
        "upload",
        (TUS, *defaults),
        expect=(200,),
        retry_on=(423, 500, 502, 503, 504),
        retry_delays=(0.5, 1.0, 2.0, 3.0),
    )
    return {
        "upload": (create, patch),
        # TusExecutor.makeAttempts re-runs resumeOrCreateUpload: HEAD, then PATCH from Upload-Offset.
        "resume-after-cut": (
            create,
            replace(patch, name="patch-cut", until_complete=False, cut_after=cut),
            head,
            patch,
        ),
    }


def build_sequences(cut_after: int = 300_000) -> dict[str, dict[str, tuple[Step, ...]]]:
    return {
        "tuskit-3.7.1": _tuskit(cut_after),
        "tus-java-client-0.5.1-jvm": _java(True, JAVA_BUFFER, JVM_DEFAULTS, cut_after),
        "tus-android-client-0.1.12": _java(False, ANDROID_BUFFER, ANDROID_DEFAULTS, cut_after),
    }


SEQUENCES = build_sequences()
METADATA_ENCODERS = {
    "tuskit-3.7.1": tuskit_metadata,
    "tus-java-client-0.5.1-jvm": java_metadata,
    "tus-android-client-0.1.12": java_metadata,
}


# ----------------------------------------------------------------------------------------------
# Executor


@dataclass
class _State:
    endpoint: str
    size: int
    metadata: str
    upload_url: str | None = None
    offset: int = 0


def _fill(value: str, state: _State) -> str:
    return (
        value.replace("{offset}", str(state.offset))
        .replace("{size}", str(state.size))
        .replace("{metadata}", state.metadata)
    )


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos : pos + size]


def _send(
    url: str, step: Step, headers: dict[str, str], body: bytes | None, timeout: float
) -> tuple[int | None, dict[str, str]]:
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"bad URL {url}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if step.cut_after is not None:
        _send_cut(parts.hostname, parts.port or 80, step, path, headers, body or b"", timeout)
        return None, {}
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        if step.framing == "chunked":
            conn.request(
                step.method, path, body=_pieces(body or b"", step.write_size), headers=headers, encode_chunked=True
            )
        else:
            conn.request(step.method, path, body=body, headers=headers)
        resp = conn.getresponse()  # skips a "100 Continue" interim response by itself
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def _send_cut(
    host: str, port: int, step: Step, path: str, headers: dict[str, str], body: bytes, timeout: float
) -> None:
    """Sends the request head and `cut_after` body bytes, then closes: the client vanished mid-body."""
    assert step.cut_after is not None
    lines = [f"{step.method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sent = body[: step.cut_after]
    if step.framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        wire = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in _pieces(sent, step.write_size))
    else:
        lines.append(f"Content-Length: {len(body)}")
        wire = sent
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + wire)
        time.sleep(0.05)  # let the bytes leave before the close, as a dying client's kernel would


def replay(
    base_url: str,
    steps: tuple[Step, ...],
    payload: bytes,
    *,
    filename: str = "payload.bin",
    metadata: str | None = None,
    extra_headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    max_requests: int = 1000,
) -> ReplayResult:
    """Runs `steps` against the creation endpoint `base_url` and reports every exchange."""
    state = _State(base_url, len(payload), metadata if metadata is not None else java_metadata(filename))
    outcomes: list[StepOutcome] = []
    budget = max_requests
    for step in steps:
        rounds = (state.size // max(step.body or 1, 1)) + 2 if step.until_complete else 1
        for _ in range(rounds):
            if step.until_complete and state.offset >= state.size:
                break
            attempts = (0.0, *step.retry_delays)
            for attempt, delay in enumerate(attempts):
                budget -= 1
                if budget < 0:
                    raise RuntimeError("replay exceeded its request budget")
                time.sleep(delay)
                outcome = _run_step(step, state, payload, extra_headers or {}, timeout)
                outcomes.append(outcome)
                retry = outcome.status in step.retry_on and attempt + 1 < len(attempts)
                if not retry:
                    break
            if not outcomes[-1].expected:
                return ReplayResult(state.upload_url, state.offset, state.size, outcomes)
    return ReplayResult(state.upload_url, state.offset, state.size, outcomes)


def _run_step(step: Step, state: _State, payload: bytes, extra: dict[str, str], timeout: float) -> StepOutcome:
    url = state.endpoint if step.target == "endpoint" else state.upload_url
    if url is None:
        raise RuntimeError(f"step {step.name} needs an upload URL, but none was created")
    headers = {k: _fill(v, state) for k, v in step.headers if not (k == "Upload-Metadata" and not state.metadata)}
    headers.update(extra)
    body: bytes | None = None
    if step.body is not None:
        end = state.size if step.body == REST else min(state.offset + step.body, state.size)
        body = payload[state.offset : end]
    status, response = _send(url, step, headers, body, timeout)
    outcome = StepOutcome(step.name, step.method, url, status, headers, len(body or b""), response)
    if status is None:
        return outcome  # a deliberate cut: nothing to check
    outcome.expected = status in step.expect
    if step.method == "POST" and step.target == "endpoint" and "location" in response:
        # Every client here resolves a relative Location against the URL it POSTed to.
        state.upload_url = urljoin(url, response["location"])
    if "upload-offset" in response and (status < 300 or step.offset_from_any_status):
        state.offset = int(response["upload-offset"])
    return outcome
