"""Checks for the checksum, concatenation and expiration extensions."""

from __future__ import annotations

import base64
import hashlib
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from conformance.client import Client
from conformance.registry import check, expect, expect_status

CHECKSUM = ("checksum",)
CONCAT = ("concatenation",)


def _digest(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


@check("checksum-algorithms", "OPTIONS lists Tus-Checksum-Algorithm, sha1 included", CHECKSUM)
def checksum_algorithms(c: Client) -> None:
    algorithms = [a.strip().lower() for a in (c.options().header("Tus-Checksum-Algorithm") or "").split(",")]
    expect("sha1" in algorithms, f"Tus-Checksum-Algorithm {algorithms!r} lacks sha1 (the spec's MUST)")


@check("checksum-match", "a PATCH whose Upload-Checksum matches is stored (204)", CHECKSUM)
def checksum_match(c: Client) -> None:
    url = c.create(6)
    for algorithm in [a.strip() for a in (c.options().header("Tus-Checksum-Algorithm") or "").split(",")]:
        if algorithm not in hashlib.algorithms_guaranteed:
            continue
        url = c.create(3)
        r = c.patch(url, 0, b"abc", {"Upload-Checksum": _digest(algorithm, b"abc")})
        expect_status(r.status, 204, what=f"{algorithm} checksum")


@check("checksum-mismatch-460", "a mismatching checksum is 460 and none of the bytes are kept", CHECKSUM)
def checksum_mismatch(c: Client) -> None:
    url = c.create(6)
    c.patch(url, 0, b"abc")
    r = c.patch(url, 3, b"xyz", {"Upload-Checksum": _digest("sha1", b"def")})
    expect_status(r.status, 460)
    expect(c.head(url).header("Upload-Offset") == "3", "bytes of a mismatching PATCH were kept")
    expect_status(c.patch(url, 3, b"def", {"Upload-Checksum": _digest("sha1", b"def")}).status, 204, what="retry")


@check("checksum-unsupported-400", "an unsupported algorithm or malformed Upload-Checksum is 400", CHECKSUM)
def checksum_unsupported(c: Client) -> None:
    url = c.create(3)
    for value in ("nosuchalgo AAAA", "sha1", "sha1 not-base64!", "sha1 " + base64.b64encode(b"short").decode()):
        expect_status(c.patch(url, 0, b"abc", {"Upload-Checksum": value}).status, 400, what=repr(value))
    expect(c.head(url).header("Upload-Offset") == "0", "a refused PATCH stored bytes")


@check("concat-partial", "Upload-Concat: partial creates a partial upload, reported by HEAD", CONCAT)
def concat_partial(c: Client) -> None:
    url = c.create(3, {"Upload-Concat": "partial"})
    expect(c.head(url).header("Upload-Concat") == "partial", "HEAD of a partial lacks Upload-Concat: partial")


@check("concat-final", "Upload-Concat: final;URLs builds the final upload from partials in order", CONCAT)
def concat_final(c: Client) -> None:
    urls = []
    for part in (b"first-", b"second-", b"third"):
        url = c.create(len(part), {"Upload-Concat": "partial"})
        expect_status(c.patch(url, 0, part).status, 204, what="partial PATCH")
        urls.append(url)
    paths = " ".join(urlsplit(u).path for u in urls)
    r = c.request("POST", headers={"Upload-Concat": f"final;{paths}"})
    expect_status(r.status, 201, what="final creation")
    final = r.header("Location") or ""
    head = c.head(final)
    expect((head.header("Upload-Concat") or "").startswith("final;"), "HEAD of the final lacks Upload-Concat: final;")
    expect(head.header("Upload-Length") == str(len(b"first-second-third")), "final length is not the sum")
    got = c.request("GET", final, tus=False)
    if got.status == 200:
        expect(got.body == b"first-second-third", "final bytes are not the partials in order")


@check("concat-final-patch-403", "PATCH against a final upload is 403", CONCAT)
def concat_final_patch(c: Client) -> None:
    url = c.create(3, {"Upload-Concat": "partial"})
    c.patch(url, 0, b"abc")
    r = c.request("POST", headers={"Upload-Concat": f"final;{urlsplit(url).path}"})
    expect_status(r.status, 201)
    final = r.header("Location") or ""
    expect_status(c.patch(final, 3, b"x").status, 403)


@check(
    "concat-unfinished",
    "a final of unfinished partials reports no Upload-Offset until done",
    ("concatenation-unfinished",),
)
def concat_unfinished(c: Client) -> None:
    url = c.create(3, {"Upload-Concat": "partial"})
    r = c.request("POST", headers={"Upload-Concat": f"final;{urlsplit(url).path}"})
    expect_status(r.status, 201)
    final = r.header("Location") or ""
    expect(c.head(final).header("Upload-Offset") is None, "HEAD of an unassembled final has Upload-Offset")
    c.patch(url, 0, b"abc")
    expect(c.head(final).header("Upload-Offset") == "3", "final not assembled after its last partial finished")


@check("concat-invalid", "a final naming unknown or non-partial uploads is refused with 4xx", CONCAT)
def concat_invalid(c: Client) -> None:
    plain = c.create(1)
    for value in ("final;/files/does-not-exist-0000", f"final;{urlsplit(plain).path}", "final;"):
        r = c.request("POST", headers={"Upload-Concat": value})
        expect(400 <= r.status < 500, f"{value!r} got {r.status}")


@check("expiration-header", "unfinished uploads carry Upload-Expires as an RFC 9110 date", ("expiration",))
def expiration_header(c: Client) -> None:
    r = c.request("POST", headers={"Upload-Length": "10"})
    value = r.header("Upload-Expires")
    if value is None:
        return  # the spec: only "if the upload is going to expire"
    parsedate_to_datetime(value)
    url = r.header("Location") or ""
    expect(c.patch(url, 0, b"abc").header("Upload-Expires") is not None, "PATCH response lacks Upload-Expires")
