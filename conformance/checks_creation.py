"""Checks for the creation, creation-with-upload, creation-defer-length and termination extensions."""

from __future__ import annotations

from conformance.client import OCTET, Client
from conformance.registry import check, expect, expect_status


@check("create-201", "POST with Upload-Length creates an upload: 201 and Location", ("creation",))
def create_basic(c: Client) -> None:
    r = c.request("POST", headers={"Upload-Length": "100"})
    expect_status(r.status, 201)
    expect(bool(r.header("Location")), "201 without Location")


@check("create-length-required", "POST without Upload-Length or Upload-Defer-Length is 400", ("creation",))
def create_needs_length(c: Client) -> None:
    expect_status(c.request("POST").status, 400)


@check("create-length-invalid", "a negative, non-numeric or huge Upload-Length is 400/413", ("creation",))
def create_bad_length(c: Client) -> None:
    for bad in ("-1", "ten", "1e3", "+5", "", "18446744073709551616"):
        expect_status(c.request("POST", headers={"Upload-Length": bad}).status, 400, 413, what=f"Upload-Length {bad!r}")


@check("create-max-size", "Upload-Length above Tus-Max-Size is 413", ("creation",))
def create_max_size(c: Client) -> None:
    max_size = c.options().header("Tus-Max-Size")
    if max_size is None:
        return  # nothing to exceed
    r = c.request("POST", headers={"Upload-Length": str(int(max_size) + 1)})
    expect_status(r.status, 413)


@check("create-with-upload", "POST with a body stores it and answers Upload-Offset", ("creation-with-upload",))
def create_with_upload(c: Client) -> None:
    r = c.request("POST", headers={"Upload-Length": "10", **OCTET}, body=b"01234")
    expect_status(r.status, 201)
    expect(r.header("Upload-Offset") == "5", f"Upload-Offset {r.header('Upload-Offset')!r}, expected 5")
    url = r.header("Location") or ""
    expect(c.head(url).header("Upload-Offset") == "5", "HEAD after creation-with-upload is not 5")
    expect_status(c.patch(url, 5, b"56789").status, 204, what="resuming PATCH")


@check("create-zero-length", "an upload of length 0 is complete on creation", ("creation",))
def create_zero(c: Client) -> None:
    url = c.create(0)
    r = c.head(url)
    expect(r.header("Upload-Offset") == "0" and r.header("Upload-Length") == "0", "zero-length upload state wrong")


@check("defer-length", "Upload-Defer-Length: 1 defers; a later PATCH sets Upload-Length", ("creation-defer-length",))
def defer_length(c: Client) -> None:
    url = c.create(None, {"Upload-Defer-Length": "1"})
    r = c.head(url)
    expect(r.header("Upload-Defer-Length") == "1", "HEAD lacks Upload-Defer-Length: 1")
    expect(r.header("Upload-Length") is None, "HEAD of a deferred upload has Upload-Length")
    expect_status(c.patch(url, 0, b"abc").status, 204, what="PATCH without length")
    expect_status(c.patch(url, 3, b"def", {"Upload-Length": "6"}).status, 204, what="PATCH declaring the length")
    r = c.head(url)
    expect(r.header("Upload-Length") == "6" and r.header("Upload-Offset") == "6", "deferred length not applied")


@check(
    "defer-length-invalid",
    "Upload-Defer-Length other than 1, or with Upload-Length, is 400",
    ("creation-defer-length",),
)
def defer_invalid(c: Client) -> None:
    expect_status(c.request("POST", headers={"Upload-Defer-Length": "2"}).status, 400, what="value 2")
    r = c.request("POST", headers={"Upload-Defer-Length": "1", "Upload-Length": "5"})
    expect_status(r.status, 400, what="both headers")


@check("terminate", "DELETE answers 204; the upload is then gone for HEAD and PATCH", ("termination",))
def terminate(c: Client) -> None:
    url = c.create(10)
    c.patch(url, 0, b"abc")
    expect_status(c.request("DELETE", url).status, 204)
    expect_status(c.head(url).status, 404, 410, what="HEAD after DELETE")
    expect_status(c.patch(url, 3, b"def").status, 404, 410, what="PATCH after DELETE")
    expect_status(c.request("DELETE", url).status, 404, 410, what="second DELETE")


@check("terminate-override", "DELETE via X-HTTP-Method-Override works", ("termination",))
def terminate_override(c: Client) -> None:
    url = c.create(10)
    expect_status(c.request("POST", url, {"X-HTTP-Method-Override": "DELETE"}).status, 204)
    expect_status(c.head(url).status, 404, 410)
