"""The headers built about an upload, without a server."""

from __future__ import annotations

from tusd_py.model.upload import UploadInfo
from tusd_py.protocol.response_headers import capabilities, http_date, upload_state_headers


def test_a_final_waiting_for_partials_reports_no_offset() -> None:
    waiting = upload_state_headers(UploadInfo(id="f", length=None, concat="final", partials=["a"]))
    assert "Upload-Offset" not in waiting and waiting["Upload-Defer-Length"] == "1"
    done = upload_state_headers(UploadInfo(id="f", length=4, offset=4, concat="final", finished_at=1.0))
    assert done["Upload-Offset"] == "4" and done["Upload-Length"] == "4"


def test_repr_digest_only_once_finished() -> None:
    digest = "00" * 32
    assert "Repr-Digest" not in upload_state_headers(UploadInfo(id="u", length=1, offset=1, sha256=digest))
    finished = upload_state_headers(UploadInfo(id="u", length=1, offset=1, sha256=digest, finished_at=1.0))
    assert finished["Repr-Digest"] == "sha-256=:" + "A" * 43 + "=:"
    assert finished["Cache-Control"] == "no-store"


def test_capabilities_and_dates() -> None:
    assert capabilities([], None) == {"Tus-Version": "1.0.0"}
    assert capabilities(["creation", "termination"], 10) == {
        "Tus-Version": "1.0.0",
        "Tus-Extension": "creation,termination",
        "Tus-Max-Size": "10",
    }
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
