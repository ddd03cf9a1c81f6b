"""Every interop version of "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload) we
serve, and how they differ: one table, like the recording states in ``pipeline/states.py``.

A draft client names its version in ``Upload-Draft-Interop-Version`` on every request ("Draft
Version Identification"); nothing else in the server compares version numbers. The handlers in
``extensions/resumable_draft.py`` and the pure rules in ``protocol/draft_fields.py`` read the row
of the request's version and act on its columns.

Sources, read from the draft's own history (httpwg/http-extensions, tags
``draft-ietf-httpbis-resumable-upload-NN``, file ``draft-ietf-httpbis-resumable-upload.md``) and
Apple's server (apple/swift-nio-extras, ``Sources/NIOResumableUpload/HTTPResumableUploadProtocol.swift``,
which serves 3, 5 and 6, the versions URLSession sends):

======== ============ ============================================================================
version  drafts       what changed for a server
======== ============ ============================================================================
3        -01          ``Upload-Incomplete`` (true while more is to come); append answered 201
4        -02          ``Upload-Complete`` replaces it (inverted meaning)
5        -03          HEAD may also answer 200 (we keep 204, as -01/-02 require and Apple does)
6        -04, -05     PATCH must be ``application/partial-upload``; ``Upload-Limit`` (age key
                      ``expires``); problem types mismatching-upload-offset, completed-upload;
                      -05 adds ``Upload-Length`` (no version bump)
7        -06 .. -08   ``expires`` renamed ``max-age``; an append that does not complete the upload
                      answers with ``Upload-Complete: ?0`` (examples: 204); problem type
                      inconsistent-upload-length
8        -09 .. -11   104 carries ``Upload-Limit``; HEAD MUST carry it; 100 Continue and 104 both
======== ============ ============================================================================

The editor's copy after -11 (httpwg/http-extensions at 2026-07-01) still says "The current
interop version is 8". Issue 15 says version 9 came with -12; that could not be confirmed from
any source available here, so 9 is not served (a client sending it gets a 400 and no 104). Adding
a version, once its text is known, is one row below.

Not a difference: what the Upload-Length header means. Apple's v5 client already sends it (see
NIOResumableUploadTests.testResumableUploadInterruptedV5), so every version may carry it.
"""

from __future__ import annotations

from dataclasses import dataclass

INTEROP_HEADER = "Upload-Draft-Interop-Version"
PARTIAL_UPLOAD = "application/partial-upload"


@dataclass(frozen=True, slots=True)
class DraftVersion:
    number: int
    drafts: str  # which draft documents define it
    #: The completeness field: ``Upload-Incomplete`` (v3, true = more to come) or ``Upload-Complete``.
    complete_field: str
    #: Media type a PATCH must carry (None: any; before -04 the draft named none).
    append_media_type: str | None
    #: Status of an append that did not complete the upload (-01..-05: 201; -06 on: 204).
    append_status: int
    #: Status of an append that completed it (the drafts recommend 201 until -05, then leave it
    #: to "the resource"; ours answers a tus-like 204).
    completing_append_status: int
    #: HEAD status: 204 in every version (-01/-02 require it; later drafts allow 200 too).
    head_status: int
    #: Whether responses carry ``Upload-Limit`` (from -04), and the name of the lifetime key.
    has_limits: bool
    age_key: str | None
    #: Whether the 104 interim response carries ``Upload-Limit`` (-09 on: MUST; earlier: MAY,
    #: and only the final response is specified to).
    limits_in_104: bool
    #: Whether responses carry ``Upload-Length`` (the field exists from -05).
    length_in_responses: bool

    @property
    def inverted(self) -> bool:
        return self.complete_field == "Upload-Incomplete"

    def complete_value(self, complete: bool) -> str:
        """The completeness field's value (a structured-field Boolean) for this version."""
        return "?1" if complete != self.inverted else "?0"


def _row(
    number: int,
    drafts: str,
    *,
    complete_field: str = "Upload-Complete",
    append_media_type: str | None = PARTIAL_UPLOAD,
    append_status: int = 204,
    completing_append_status: int = 204,
    has_limits: bool = True,
    age_key: str | None = "max-age",
    limits_in_104: bool = False,
    length_in_responses: bool = True,
) -> DraftVersion:
    return DraftVersion(
        number=number,
        drafts=drafts,
        complete_field=complete_field,
        append_media_type=append_media_type,
        append_status=append_status,
        completing_append_status=completing_append_status,
        head_status=204,
        has_limits=has_limits,
        age_key=age_key if has_limits else None,
        limits_in_104=limits_in_104,
        length_in_responses=length_in_responses,
    )


def _early(number: int, drafts: str, complete_field: str = "Upload-Complete") -> DraftVersion:
    """-01 .. -03: no media type for appends, 201 for every append, no limits, no Upload-Length."""
    return _row(
        number,
        drafts,
        complete_field=complete_field,
        append_media_type=None,
        append_status=201,
        completing_append_status=201,
        has_limits=False,
        length_in_responses=False,
    )


VERSIONS: dict[int, DraftVersion] = {
    3: _early(3, "-01", complete_field="Upload-Incomplete"),
    4: _early(4, "-02"),
    5: _early(5, "-03"),
    6: _row(6, "-04, -05", append_status=201, completing_append_status=201, age_key="expires"),
    7: _row(7, "-06 .. -08"),
    8: _row(8, "-09 .. -11", limits_in_104=True),
}
LATEST = max(VERSIONS)


def served_versions() -> str:
    return ", ".join(str(n) for n in sorted(VERSIONS))


def draft_version(value: str | None) -> DraftVersion | None:
    """The row for the request's ``Upload-Draft-Interop-Version``; None when absent or not served
    (the draft: no 104 for a missing or mismatching version)."""
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 3:
        return None
    return VERSIONS.get(int(text))
