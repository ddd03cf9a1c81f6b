"""Checks for "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload), one set per
interop version; each set runs when OPTIONS with ``Upload-Draft-Interop-Version`` echoes that
version (the runner probes each one, so a server speaking only some versions is checked on those).

The exchanges follow the draft's own examples ("Overview" Example 1, "Upload Creation",
"Mismatching Offset", "Upload Cancellation"); the version differences come from the server's
table (``tusd_py.protocol.draft_versions``), so a server is checked against what each version says.
"""

from __future__ import annotations

import json
from urllib.parse import urljoin

from conformance.client import Client
from conformance.draft_wire import WireResponse, send
from conformance.registry import check, expect, expect_status
from tusd_py.protocol.draft_versions import INTEROP_HEADER, PARTIAL_UPLOAD, VERSIONS, DraftVersion

DRAFT = ("resumable-upload-draft",)  # detected by the runner, not read from Tus-Extension
BODY = b"resumable!"


def version_tag(number: int) -> str:
    """What the runner adds to the detected extensions when the server echoes this version."""
    return f"{DRAFT[0]}-v{number}"


def _request(
    c: Client, method: str, url: str | None, headers: dict[str, str], body: bytes = b"", cut_after: int | None = None
) -> WireResponse:
    return send(c.base_url, method, url, {**c.extra_headers, **headers}, body, cut_after=cut_after, timeout=c.timeout)


def _creation(v: DraftVersion, *, complete: bool) -> dict[str, str]:
    return {
        INTEROP_HEADER: str(v.number),
        v.complete_field: v.complete_value(complete),
        "Upload-Length": str(len(BODY)),
    }


def _append(v: DraftVersion, offset: int, rest: bytes) -> dict[str, str]:
    fields = {INTEROP_HEADER: str(v.number), v.complete_field: v.complete_value(True), "Upload-Offset": str(offset)}
    fields["Content-Length"] = str(len(rest))
    if v.append_media_type:
        fields["Content-Type"] = v.append_media_type
    return fields


def _location(c: Client, response: WireResponse) -> str:
    interim = response.first_interim(104)
    expect(interim is not None, "no 104 Upload Resumption Supported before the final response")
    assert interim is not None
    expect(bool(interim.get("location")), "104 without Location")
    return urljoin(c.base_url, interim["location"])


def _same_bytes(c: Client, url: str) -> None:
    download = c.request("GET", url, tus=False)
    expect_status(download.status, 200, what="GET of the completed upload")
    expect(download.body == BODY, "the stored bytes differ from what was sent")


def _register(v: DraftVersion) -> None:
    n = v.number
    served = (*DRAFT, version_tag(n))

    @check(f"draft-v{n}-creation", f"v{n}: creation in one request: 104 (Location, version), 201", served)
    def creation(c: Client) -> None:
        r = _request(c, "POST", None, _creation(v, complete=True), BODY)
        expect_status(r.status or 0, 201, what="creation")
        url = _location(c, r)
        interim = r.first_interim(104) or {}
        shown = interim.get(INTEROP_HEADER.lower())
        expect(shown == str(n), f"104 carries interop version {shown!r}, not {n}")
        expect(r.header(v.complete_field) == v.complete_value(True), f"201 lacks {v.complete_field}")
        expect(r.header("Upload-Offset") == str(len(BODY)), f"Upload-Offset {r.header('Upload-Offset')!r}")
        _same_bytes(c, url)

    @check(f"draft-v{n}-resume", f"v{n}: creation cut after the 104; HEAD and PATCH complete it", served)
    def resume(c: Client) -> None:
        cut = _request(c, "POST", None, _creation(v, complete=True), BODY, cut_after=4)
        url = _location(c, cut)
        head = _request(c, "HEAD", url, {INTEROP_HEADER: str(n)})
        expect_status(head.status or 0, v.head_status, what="offset retrieval")
        expect(head.header("Cache-Control") == "no-store", "HEAD without Cache-Control: no-store")
        expect(head.header(v.complete_field) == v.complete_value(False), f"HEAD {v.complete_field} is not false")
        offset = int(head.header("Upload-Offset") or "-1")
        expect(0 <= offset <= 4, f"HEAD reports offset {offset} after 4 bytes were sent")
        r = _request(c, "PATCH", url, _append(v, offset, BODY[offset:]), BODY[offset:])
        expect_status(r.status or 0, v.completing_append_status, what="completing append")
        expect(r.header(v.complete_field) == v.complete_value(True), "the completing append is not marked complete")
        _same_bytes(c, url)

    @check(f"draft-v{n}-offset-mismatch", f"v{n}: a wrong Upload-Offset is 409 with the offset and a problem", served)
    def mismatch(c: Client) -> None:
        created = _request(c, "POST", None, _creation(v, complete=False), BODY[:3])
        expect_status(created.status or 0, 201, what="creation")
        url = urljoin(c.base_url, created.header("Location") or "")
        r = _request(c, "PATCH", url, _append(v, 5, BODY[5:]), BODY[5:])
        expect_status(r.status or 0, 409, what="append at a wrong offset")
        expect(r.header("Upload-Offset") == "3", f"409 carries Upload-Offset {r.header('Upload-Offset')!r}, not 3")
        expect((r.header("Content-Type") or "").startswith("application/problem+json"), "409 is not a problem document")
        document = json.loads(r.body)
        expect(document.get("expected-offset") == 3 and document.get("provided-offset") == 5, f"problem {document}")
        if v.complete_means_processed:  # -12: "... and the Upload-Complete header field set to false"
            shown = r.header(v.complete_field)
            expect(shown == v.complete_value(False), f"409 carries {v.complete_field} {shown!r}, not false")

    @check(f"draft-v{n}-cancel", f"v{n}: DELETE cancels the upload; it is gone afterwards", (*served, "termination"))
    def cancel(c: Client) -> None:
        created = _request(c, "POST", None, _creation(v, complete=False), BODY[:3])
        url = urljoin(c.base_url, created.header("Location") or "")
        expect_status(_request(c, "DELETE", url, {INTEROP_HEADER: str(n)}).status or 0, 204, what="cancellation")
        expect_status(_request(c, "HEAD", url, {INTEROP_HEADER: str(n)}).status or 0, 404, what="HEAD after it")

    if v.get_retrieves_offset:

        @check(f"draft-v{n}-get-offset", f"v{n}: GET on the upload resource retrieves the offset as HEAD does", served)
        def get_offset(c: Client) -> None:
            created = _request(c, "POST", None, _creation(v, complete=False), BODY[:3])
            url = urljoin(c.base_url, created.header("Location") or "")
            r = _request(c, "GET", url, {INTEROP_HEADER: str(n)})
            expect(r.status is not None and 200 <= r.status < 300, f"GET for the offset answered {r.status}")
            expect(r.header("Upload-Offset") == "3", f"GET reports Upload-Offset {r.header('Upload-Offset')!r}, not 3")
            expect(bool(r.header("Upload-Limit")), "GET without Upload-Limit (HEAD MUST carry it)")

    if v.complete_means_processed:

        @check(f"draft-v{n}-completed", f"v{n}: appends to a completed upload: 409 (not complete) or replay", served)
        def completed(c: Client) -> None:
            r = _request(c, "POST", None, _creation(v, complete=True), BODY)
            expect_status(r.status or 0, 201, what="creation")
            url = _location(c, r)
            end = len(BODY)
            wrong = _request(c, "PATCH", url, _append(v, end - 2, b""))
            expect_status(wrong.status or 0, 409, what="empty append at a wrong offset to a completed upload")
            shown = wrong.header(v.complete_field)
            expect(shown == v.complete_value(False), f"409 carries {v.complete_field} {shown!r}, not false")
            expect(
                wrong.header("Upload-Offset") == str(end),
                f"409 carries Upload-Offset {wrong.header('Upload-Offset')!r}",
            )
            again = _request(c, "PATCH", url, _append(v, end, b""))  # "can choose to replay the final response"
            status = again.status or 0
            replayed = 200 <= status < 300 and again.header(v.complete_field) == v.complete_value(True)
            expect(replayed or 400 <= status < 500, f"empty append at a completed upload's offset answered {status}")
            _same_bytes(c, url)


for _version in VERSIONS.values():
    _register(_version)


@check("draft-unknown-version", "an interop version the server does not speak gets no 104", DRAFT)
def unknown_version(c: Client) -> None:
    r = _request(c, "POST", None, {INTEROP_HEADER: "999", "Upload-Complete": "?1"}, BODY)
    expect(r.first_interim(104) is None, "a 104 for an interop version the server does not speak")
    expect(r.status is not None and r.status >= 400, f"status {r.status} for an unknown interop version")


@check("draft-partial-upload-type", "from v6 an append must be application/partial-upload", (*DRAFT, version_tag(6)))
def media_type(c: Client) -> None:
    v = VERSIONS[6]
    created = _request(c, "POST", None, _creation(v, complete=False), BODY[:3])
    url = urljoin(c.base_url, created.header("Location") or "")
    fields = {**_append(v, 3, BODY[3:]), "Content-Type": "application/octet-stream"}
    r = _request(c, "PATCH", url, fields, BODY[3:])
    expect(r.status == 415, f"an append without {PARTIAL_UPLOAD} got {r.status}, not 415")
