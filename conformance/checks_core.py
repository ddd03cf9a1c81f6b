"""Core protocol checks (tus 1.0.0 "Core Protocol" and "Headers")."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

from conformance.client import OCTET, TUS, Client
from conformance.registry import check, expect, expect_status

CREATION = ("creation",)


@check("options-204", "OPTIONS answers 204/200 with Tus-Resumable and Tus-Version listing 1.0.0")
def options_basic(c: Client) -> None:
    r = c.options()
    expect_status(r.status, 204, 200)
    expect(r.header("Tus-Resumable") == "1.0.0", "OPTIONS lacks Tus-Resumable: 1.0.0")
    versions = [v.strip() for v in (r.header("Tus-Version") or "").split(",")]
    expect("1.0.0" in versions, f"Tus-Version {r.header('Tus-Version')!r} does not list 1.0.0")


@check("options-max-size", "Tus-Max-Size, when present, is a non-negative integer")
def options_max_size(c: Client) -> None:
    value = c.options().header("Tus-Max-Size")
    expect(value is None or value.isdigit(), f"Tus-Max-Size {value!r} is not an integer")


@check("tus-resumable-required", "requests without Tus-Resumable get 412 with Tus-Version", CREATION)
def missing_tus_resumable(c: Client) -> None:
    r = c.request("POST", headers={"Upload-Length": "1"}, tus=False)
    expect_status(r.status, 412, what="POST without Tus-Resumable")
    expect(r.header("Tus-Version") is not None, "412 response lacks Tus-Version")
    url = c.create(1)
    r = c.request("HEAD", url, tus=False)
    expect_status(r.status, 412, what="HEAD without Tus-Resumable")


@check("tus-resumable-unsupported", "an unsupported Tus-Resumable version gets 412 with Tus-Version", CREATION)
def unsupported_version(c: Client) -> None:
    url = c.create(1)
    r = c.request("HEAD", url, {"Tus-Resumable": "0.2.2"}, tus=False)
    expect_status(r.status, 412)
    expect("1.0.0" in (r.header("Tus-Version") or ""), "412 response lacks Tus-Version: 1.0.0")


@check("head-fresh-upload", "HEAD of a new upload: 200, Upload-Offset 0, Upload-Length, no-store", CREATION)
def head_fresh(c: Client) -> None:
    url = c.create(5)
    r = c.head(url)
    expect_status(r.status, 200)
    expect(r.header("Upload-Offset") == "0", f"Upload-Offset is {r.header('Upload-Offset')!r}, not 0")
    expect(r.header("Upload-Length") == "5", f"Upload-Length is {r.header('Upload-Length')!r}, not 5")
    expect("no-store" in (r.header("Cache-Control") or ""), "HEAD lacks Cache-Control: no-store")
    expect(r.header("Tus-Resumable") == "1.0.0", "HEAD lacks Tus-Resumable")
    expect(r.body == b"", "HEAD response has a body")


@check("head-unknown-404", "HEAD of an unknown upload is 404 (or 410)")
def head_unknown(c: Client) -> None:
    expect_status(c.head("does-not-exist-0000").status, 404, 410)


@check("patch-appends", "PATCH appends at Upload-Offset and answers 204 with the new offset", CREATION)
def patch_appends(c: Client) -> None:
    url = c.create(10)
    r = c.patch(url, 0, b"01234")
    expect_status(r.status, 204, what="first PATCH")
    expect(r.header("Upload-Offset") == "5", f"Upload-Offset after 5 bytes is {r.header('Upload-Offset')!r}")
    r = c.patch(url, 5, b"56789")
    expect_status(r.status, 204, what="second PATCH")
    expect(r.header("Upload-Offset") == "10", "Upload-Offset after 10 bytes is not 10")
    expect(c.head(url).header("Upload-Offset") == "10", "HEAD after completion does not report 10")


@check("patch-content-type-415", "PATCH without application/offset+octet-stream is 415, offset unchanged", CREATION)
def patch_content_type(c: Client) -> None:
    url = c.create(4)
    r = c.request("PATCH", url, {"Upload-Offset": "0", "Content-Type": "application/octet-stream"}, b"abcd")
    expect_status(r.status, 415)
    r = c.request("PATCH", url, {"Upload-Offset": "0"}, b"abcd")
    expect_status(r.status, 415, what="PATCH without Content-Type")
    expect(c.head(url).header("Upload-Offset") == "0", "a refused PATCH moved the offset")


@check("patch-offset-409", "PATCH whose Upload-Offset differs from the upload's offset is 409", CREATION)
def patch_offset_conflict(c: Client) -> None:
    url = c.create(10)
    expect_status(c.patch(url, 3, b"abc").status, 409, what="PATCH at 3 of a new upload")
    c.patch(url, 0, b"abc")
    expect_status(c.patch(url, 0, b"abc").status, 409, what="replayed PATCH at 0")
    expect(c.head(url).header("Upload-Offset") == "3", "a 409 PATCH changed the offset")


@check("patch-offset-required", "PATCH without a valid Upload-Offset is 400", CREATION)
def patch_offset_required(c: Client) -> None:
    url = c.create(10)
    expect_status(c.request("PATCH", url, dict(OCTET), b"abc").status, 400, what="no Upload-Offset")
    for bad in ("-1", "abc", "1.5", " ", "0x10", "99999999999999999999999"):
        r = c.request("PATCH", url, {**OCTET, "Upload-Offset": bad}, b"abc")
        expect_status(r.status, 400, 409, what=f"Upload-Offset {bad!r}")
    expect(c.head(url).header("Upload-Offset") == "0", "a refused PATCH moved the offset")


@check("patch-beyond-length", "a PATCH body beyond Upload-Length is refused (413) and stores nothing", CREATION)
def patch_too_long(c: Client) -> None:
    url = c.create(4)
    r = c.patch(url, 0, b"0123456789")
    expect_status(r.status, 413, 400)
    expect(c.head(url).header("Upload-Offset") == "0", "an oversized PATCH stored bytes")


@check("patch-unknown-404", "PATCH of an unknown upload is 404 (or 410)")
def patch_unknown(c: Client) -> None:
    expect_status(c.patch("does-not-exist-0000", 0, b"x").status, 404, 410)


@check("metadata-roundtrip", "Upload-Metadata given at creation is returned by HEAD", CREATION)
def metadata_roundtrip(c: Client) -> None:
    binary = base64.b64encode(bytes(range(256))).decode()
    filename = base64.b64encode("r\u00e9union.m4a".encode()).decode()
    sent = f"filename {filename},flag,blob {binary}"
    url = c.create(1, {"Upload-Metadata": sent})
    got = c.head(url).header("Upload-Metadata") or ""
    pairs = {p.split(" ")[0]: [*p.split(" "), ""][1] for p in got.split(",") if p}
    expect(pairs.get("blob") == binary, "binary metadata value changed")
    expect("flag" in pairs and pairs["flag"] == "", "key without value lost")
    expect(base64.b64decode(pairs.get("filename", "")).decode() == "r\u00e9union.m4a", "filename changed")


@check("metadata-invalid", "invalid Upload-Metadata (bad Base64, duplicate key) is 400", CREATION)
def metadata_invalid(c: Client) -> None:
    for bad in ("filename !!!notbase64", "a YQ==,a Yg==", "key with space YQ==", ",", "filename YQ"):
        r = c.request("POST", headers={"Upload-Length": "1", "Upload-Metadata": bad})
        expect_status(r.status, 400, what=f"Upload-Metadata {bad!r}")


@check("location-absolute", "Location of a new upload is an absolute URL on the upload collection", CREATION)
def location_absolute(c: Client) -> None:
    r = c.request("POST", headers={"Upload-Length": "1"})
    expect_status(r.status, 201)
    location = r.header("Location") or ""
    parts = urlsplit(location)
    expect(parts.scheme in ("http", "https") and bool(parts.netloc), f"Location {location!r} is not absolute")


@check("method-override", "X-HTTP-Method-Override on POST is honoured (PATCH, HEAD, DELETE)", CREATION)
def method_override(c: Client) -> None:
    url = c.create(3)
    r = c.request("POST", url, {**OCTET, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"}, b"abc")
    expect_status(r.status, 204, what="POST overridden to PATCH")
    r = c.request("POST", url, {"X-HTTP-Method-Override": "HEAD"})
    expect(r.header("Upload-Offset") == "3", "POST overridden to HEAD did not report the offset")


@check("responses-carry-tus-resumable", "tus responses carry Tus-Resumable, errors included", CREATION)
def responses_carry_version(c: Client) -> None:
    url = c.create(3)
    for r in (c.head(url), c.patch(url, 1, b"x"), c.head("does-not-exist-0000")):
        expect(r.header("Tus-Resumable") == "1.0.0", f"a {r.status} response lacks Tus-Resumable")


@check("errors-have-reasons", "4xx responses carry a plain-text reason", CREATION)
def errors_have_reasons(c: Client) -> None:
    url = c.create(3)
    r = c.patch(url, 2, b"x")
    expect(r.status == 409 and len(r.body.strip()) > 0, "409 response has no reason text")


@check("unknown-method-405", "a method the server does not implement on an upload is refused with 4xx")
def unknown_method(c: Client) -> None:
    r = c.request("PUT", "does-not-exist-0000", dict(TUS), b"x")
    expect(400 <= r.status < 500, f"PUT got {r.status}")
