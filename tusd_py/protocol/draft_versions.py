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
9        -12 on       ``GET`` on the upload resource retrieves the offset like ``HEAD`` (#3467);
                      ``Upload-Complete`` in a response says whether it comes from processing the
                      representation, so a protocol error on a completed upload says ``?0``, and
                      a wrong offset is 409 whatever the upload's state (#3404); the MUST to
                      reject every append to a completed upload and the completed-upload problem
                      type are gone: the final response may be replayed (#3405)
======== ============ ============================================================================

Version 9: httpwg/http-extensions pull request 3476 ("Bump interop version to 9", merged
2026-07-05, "numerous changes since release -11"), published as -12 on 2026-07-06. The numbers
after each difference are the pull requests that made it (the editor's copy of 2026-07-01 holds
all of them but 3476; its changelog "Since draft-ietf-httpbis-resumable-upload-11" lists them).

Drafts -13 to -15 (to 2026-11-02) exist, but only their title pages are readable here; no pull
request of the working group's tracker found after 3476 bumps the interop version again, and those
merged after -12 relax the server (#3493: ``Upload-Complete`` and ``Upload-Length`` no longer
required on offset retrieval; we still send both). So 9 is the newest version served; a higher
one gets a 400 and no 104, and adding it, once its text is known, is one row below.

Rules of -12 that every row follows (they make no client of an older version fail):

* a 409 says the completeness field is false ("MUST reject the request with a 409 (Conflict)
  status code and the Upload-Complete header field set to false");
* finalizing is the service layer's ``finish`` for every version, so a check made there (-10's
  re-check of authorization and quota before an upload is finalized) holds for all of them.

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
    #: Whether ``GET`` on the upload resource is an offset retrieval answered like ``HEAD`` (-12;
    #: earlier versions do not define it, and their GET stays the tus download).
    get_retrieves_offset: bool = False
    #: Whether a response's completeness field says that it comes from processing the completed
    #: representation (-12) rather than the upload's state (earlier): a protocol error on a
    #: completed upload then says "not complete", and an empty append at a completed upload's
    #: offset replays the final response instead of being rejected.
    complete_means_processed: bool = False

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
    get_retrieves_offset: bool = False,
    complete_means_processed: bool = False,
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
        get_retrieves_offset=get_retrieves_offset,
        complete_means_processed=complete_means_processed,
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
    9: _row(9, "-12 on", limits_in_104=True, get_retrieves_offset=True, complete_means_processed=True),
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
