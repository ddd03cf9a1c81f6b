"""The exchanges URLSession makes, replayed per interop version (3, 5, 6, 8 and the latest, 9), on
the filesystem and on S3, with auth on, through a raw HTTP/1.1 client that sees the 104.

Where each exchange comes from (request fields as the source shows them; ids and hosts are ours):

* v3 (iOS 17): apple/swift-nio-extras, Tests/NIOResumableUploadTests/NIOResumableUploadTests.swift,
  ``testResumableUploadUninterruptedV3`` (POST ``Upload-Incomplete: ?0``, Content-Length 5, "Hello")
  and ``testResumableUploadInterruptedV3`` (the same POST cut after "He"; HEAD answers 204 with
  Upload-Offset 2; PATCH ``Upload-Incomplete: ?0``, Upload-Offset 2, "llo"); draft -01 "Upload
  Appending Procedure" (append answered 201).
* v5 (iOS 18.0): the same file, ``testResumableUploadUninterruptedV5`` / ``...InterruptedV5``
  (``Upload-Complete: ?1``, Upload-Length 5; PATCH without a media type).
* v6 (iOS 18.1 on): ``testResumableUploadUninterruptedV6`` / ``...InterruptedV6`` (PATCH with
  ``Content-Type: application/partial-upload``).
* v8 (draft -09 .. -11; what iOS 26.2 sends, by a report in tus/rufh-implementations pull request
  10) and v9 (draft -12, the same exchanges): draft -11, "Overview" Example 1 (creation cut after the 104, HEAD, PATCH
  ``Upload-Complete: ?1`` with application/partial-upload) and "Upload Creation" Example A
  (Content-Disposition, Content-Length = Upload-Length, ``Upload-Complete: ?1``).
* wrong offset: Apple's ``conflictResponse`` (HTTPResumableUploadProtocol.swift: 409 with the right
  Upload-Offset) and draft -11 "Mismatching Offset" (the problem document); cancellation: draft
  -11 "Upload Cancellation" example and Apple's ``cancelledResponse`` (204).
"""

from __future__ import annotations

import json

import pytest

from tests.client.raw import exchange
from tests.client.tus import id_of, path_of
from tests.draft.conftest import DraftServer, stored
from tusd_py.protocol.draft_decisions import MISMATCHING_OFFSET
from tusd_py.protocol.draft_versions import VERSIONS

PAYLOAD = b"Hello"
VERSIONS_REPLAYED = [3, 5, 6, 8, 9]  # URLSession's (3, 5, 6, 8) and the newest


def creation_fields(version: int, *, complete: bool, sent: int = len(PAYLOAD), total: int = 5) -> dict[str, str]:
    fields = {"Upload-Draft-Interop-Version": str(version), "Content-Length": str(sent)}
    if version == 3:
        fields["Upload-Incomplete"] = "?0" if complete else "?1"
    else:
        fields["Upload-Complete"] = "?1" if complete else "?0"
        fields["Upload-Length"] = str(total)
    if version >= 8:
        fields["Content-Disposition"] = "inline; filename=\"take one.m4a\"; filename*=UTF-8''take%20one.m4a"
        fields["Content-Type"] = "audio/mp4"
    return fields


def append_fields(version: int, offset: int, rest: bytes) -> dict[str, str]:
    fields = {"Upload-Draft-Interop-Version": str(version), "Upload-Offset": str(offset)}
    fields["Content-Length"] = str(len(rest))
    if version == 3:
        fields["Upload-Incomplete"] = "?0"
    else:
        fields["Upload-Complete"] = "?1"
        fields["Upload-Length"] = str(len(PAYLOAD))
    if VERSIONS[version].append_media_type:
        fields["Content-Type"] = "application/partial-upload"
    return fields


def complete_field(version: int) -> str:
    return VERSIONS[version].complete_field.lower()


@pytest.mark.parametrize("version", VERSIONS_REPLAYED)
async def test_creation_completed_in_one_request(draft_server: DraftServer, version: int) -> None:
    fields = {**creation_fields(version, complete=True), **draft_server.auth()}
    result = await exchange(draft_server.port, "POST", "/files/", fields, PAYLOAD)
    assert result.status == 201, result.body
    (interim,) = result.interim_of(104)
    assert interim["upload-draft-interop-version"] == str(version)
    assert interim["location"] == result.headers["location"]
    assert ("upload-limit" in interim) == VERSIONS[version].limits_in_104
    done = "?0" if version == 3 else "?1"
    assert result.headers[complete_field(version)] == done
    assert result.headers["upload-offset"] == "5"
    path = path_of(result.headers["location"])
    info = await stored(draft_server, id_of(path))
    assert info.length == 5 and info.offset == 5 and info.finished_at is not None
    download = await draft_server.client.get(path, headers=draft_server.auth())
    assert await download.read() == PAYLOAD
    if version >= 8:  # Content-Disposition / Content-Type became the tus filename / filetype
        assert info.metadata == {"filetype": b"audio/mp4", "filename": b"take one.m4a"}
        assert "take one.m4a" in download.headers["Content-Disposition"]
        assert download.headers["Content-Type"] == "audio/mp4"


@pytest.mark.parametrize("version", VERSIONS_REPLAYED)
async def test_creation_cut_after_the_104_resumes_to_identical_bytes(draft_server: DraftServer, version: int) -> None:
    auth = draft_server.auth()
    cut = await exchange(
        draft_server.port, "POST", "/files/", {**creation_fields(version, complete=True), **auth}, PAYLOAD, send=2
    )
    (interim,) = cut.interim_of(104)
    path = path_of(interim["location"])
    head = await exchange(draft_server.port, "HEAD", path, {"Upload-Draft-Interop-Version": str(version), **auth})
    assert head.status == VERSIONS[version].head_status == 204
    assert head.headers["upload-offset"] == "2"
    assert head.headers[complete_field(version)] == ("?1" if version == 3 else "?0")
    assert head.headers["cache-control"] == "no-store"
    assert ("upload-limit" in head.headers) == VERSIONS[version].has_limits
    rest = PAYLOAD[2:]
    result = await exchange(draft_server.port, "PATCH", path, {**append_fields(version, 2, rest), **auth}, rest)
    assert result.status == VERSIONS[version].completing_append_status, result.body
    assert result.headers["upload-offset"] == "5"
    assert result.headers[complete_field(version)] == ("?0" if version == 3 else "?1")
    download = await draft_server.client.get(path, headers=auth)
    assert await download.read() == PAYLOAD
    assert draft_server.finished == [id_of(path)]  # post-finish processing, exactly once


@pytest.mark.parametrize("version", VERSIONS_REPLAYED)
async def test_wrong_offset_is_409_with_a_problem_document(draft_server: DraftServer, version: int) -> None:
    auth = draft_server.auth()
    cut = await exchange(
        draft_server.port, "POST", "/files/", {**creation_fields(version, complete=True), **auth}, PAYLOAD, send=2
    )
    path = path_of(cut.interim_of(104)[0]["location"])
    await exchange(draft_server.port, "HEAD", path, {"Upload-Draft-Interop-Version": str(version), **auth})
    rest = PAYLOAD[4:]
    result = await exchange(draft_server.port, "PATCH", path, {**append_fields(version, 4, rest), **auth}, rest)
    assert result.status == 409
    assert result.headers["upload-offset"] == "2"
    assert result.headers["content-type"].startswith("application/problem+json")
    document = json.loads(result.body)
    assert document["type"] == MISMATCHING_OFFSET
    assert document["expected-offset"] == 2 and document["provided-offset"] == 4
    assert result.headers[complete_field(version)] == ("?1" if version == 3 else "?0")  # not complete
    info = await stored(draft_server, id_of(path))
    assert info.offset == 2  # nothing appended


@pytest.mark.parametrize("version", VERSIONS_REPLAYED)
async def test_cancellation(draft_server: DraftServer, version: int) -> None:
    auth = draft_server.auth()
    fields = {**creation_fields(version, complete=False, sent=2, total=50), **auth}
    created = await exchange(draft_server.port, "POST", "/files/", fields, PAYLOAD[:2])
    assert created.status == 201
    path = path_of(created.headers["location"])
    bob = await exchange(draft_server.port, "DELETE", path, {"Upload-Draft-Interop-Version": str(version),
                                                             **draft_server.auth("bob")})  # fmt: skip
    assert bob.status == 404  # another user's upload does not exist for him
    result = await exchange(draft_server.port, "DELETE", path, {"Upload-Draft-Interop-Version": str(version), **auth})
    assert result.status == 204
    head = await exchange(draft_server.port, "HEAD", path, {"Upload-Draft-Interop-Version": str(version), **auth})
    assert head.status == 404
    assert draft_server.finished == []


async def test_chunked_bodies_of_unknown_length(draft_server: DraftServer) -> None:
    """No Upload-Length, no Content-Length: the completing request's end declares the length
    (draft -11 "Length"); the bytes that did not fill an S3 part must make it into the object."""
    auth = draft_server.auth()
    chunked = {"Upload-Draft-Interop-Version": "8", "Transfer-Encoding": "chunked", **auth}
    created = await exchange(draft_server.port, "POST", "/files/", {**chunked, "Upload-Complete": "?0"}, b"abc")
    assert created.status == 201 and created.headers["upload-offset"] == "3"
    path = path_of(created.headers["location"])
    fields = {**chunked, "Upload-Complete": "?1", "Upload-Offset": "3", "Content-Type": "application/partial-upload"}
    done = await exchange(draft_server.port, "PATCH", path, fields, b"defg")
    assert done.status == 204 and done.headers["upload-length"] == "7", done.body
    assert await (await draft_server.client.get(path, headers=auth)).read() == b"abcdefg"
    assert draft_server.finished == [id_of(path)]
