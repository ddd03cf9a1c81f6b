"""The core protocol through the real aiohttp app: statuses, headers and the bad-input matrix."""

import asyncio
import base64
import hashlib
import os

import pytest
from aiohttp.test_utils import TestClient

from tests.client.tus import OCTET, TUS, create, id_of, offset_of, patch, path_of, processed_head, upload_files
from tusd_py.config.values import Config
from tusd_py.server.app import SERVICE_KEY, make_app
from tusd_py.server.cli import load_config, parse_args


async def test_options_advertises_exactly_the_enabled_extensions(client: TestClient) -> None:
    resp = await client.options("/files/")
    assert resp.status == 204
    assert resp.headers["Tus-Version"] == "1.0.0"
    assert resp.headers["Tus-Extension"] == (
        "creation,creation-with-upload,creation-defer-length,termination,"
        "checksum,concatenation,concatenation-unfinished,expiration"
    )
    assert resp.headers["Tus-Max-Size"] == str(64 * 1024 * 1024)


async def test_disabled_extensions_are_neither_advertised_nor_served(aiohttp_client, storage_dir) -> None:  # type: ignore[no-untyped-def]
    config = Config(storage_dir=str(storage_dir), disabled_extensions=["termination", "concatenation", "checksum"])
    client = await aiohttp_client(make_app(config))
    resp = await client.options("/files/")
    assert resp.headers["Tus-Extension"] == "creation,creation-with-upload,creation-defer-length,expiration"
    assert "Tus-Checksum-Algorithm" not in resp.headers
    path = await create(client, 3)
    assert (await client.delete(path, headers=TUS)).status == 405


async def test_full_upload_in_chunks(client: TestClient) -> None:
    path = await create(client, 10)
    for offset, part in ((0, b"012"), (3, b"3456"), (7, b"789")):
        resp = await patch(client, path, offset, part)
        assert resp.status == 204, await resp.text()
        assert resp.headers["Upload-Offset"] == str(offset + len(part))
    head = await client.head(path, headers=TUS)
    assert head.headers["Upload-Offset"] == "10"
    assert head.headers["Upload-Length"] == "10"
    assert head.headers["Cache-Control"] == "no-store"
    assert "Repr-Digest" in (await processed_head(client, path)).headers
    body = await (await client.get(path)).read()
    assert body == b"0123456789"


async def test_head_without_metadata_has_no_metadata_header(client: TestClient) -> None:
    path = await create(client, 1)
    head = await client.head(path, headers=TUS)
    assert head.status == 200 and "Upload-Metadata" not in head.headers


async def test_metadata_returned_exactly_as_sent(client: TestClient) -> None:
    sent = (
        "filename " + base64.b64encode("会議.wav".encode()).decode() + ",bin " + base64.b64encode(b"\x00\xff").decode()
    )
    path = await create(client, 1, Upload_Metadata=sent + ",flag")
    head = await client.head(path, headers=TUS)
    assert head.headers["Upload-Metadata"] == sent + ",flag"


async def test_wrong_content_type_does_not_move_the_offset(client: TestClient) -> None:
    path = await create(client, 5)
    resp = await client.patch(
        path, headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/octet-stream"}, data=b"abcde"
    )
    assert resp.status == 415
    assert "application/offset+octet-stream" in await resp.text()
    assert await offset_of(client, path) == 0


@pytest.mark.parametrize(
    "headers,status",
    [
        ({"Upload-Offset": "-1"}, 400),
        ({"Upload-Offset": "abc"}, 400),
        ({"Upload-Offset": "1" * 30}, 400),
        ({"Upload-Offset": ""}, 400),
        ({"Upload-Offset": "1"}, 409),
        ({"Upload-Offset": "0", "Upload-Length": "5"}, 400),  # length already set, and differs
        ({"Upload-Offset": "0", "Upload-Length": "x"}, 400),
        ({"Upload-Offset": "0", "Tus-Resumable": "0.2.2"}, 412),
        ({"Upload-Offset": "0", "X-HTTP-Method-Override": "FROB"}, 400),
    ],
)
async def test_bad_patch_headers_get_4xx_with_reason_and_store_nothing(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    path = await create(client, 3)
    resp = await client.patch(path, headers={**TUS, **OCTET, **headers}, data=b"abc")
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert (await resp.text()).strip()
    assert await offset_of(client, path) == 0


async def test_missing_tus_resumable_is_412_except_options_and_get(client: TestClient) -> None:
    path = await create(client, 1)
    for method in ("HEAD", "PATCH", "DELETE", "POST"):
        resp = await client.request(method, path if method != "POST" else "/files/", headers={"Upload-Length": "1"})
        assert resp.status == 412, method
        assert resp.headers["Tus-Version"] == "1.0.0"
    assert (await client.options("/files/")).status == 204


@pytest.mark.parametrize(
    "headers,status",
    [
        ({}, 400),
        ({"Upload-Length": "-5"}, 400),
        ({"Upload-Length": "5.5"}, 400),
        ({"Upload-Length": "99999999999999999999"}, 400),
        ({"Upload-Length": str(64 * 1024 * 1024 + 1)}, 413),
        ({"Upload-Length": "5", "Upload-Defer-Length": "1"}, 400),
        ({"Upload-Defer-Length": "yes"}, 400),
        ({"Upload-Length": "5", "Upload-Metadata": "k notbase64!"}, 400),
        ({"Upload-Length": "5", "Upload-Metadata": "k YQ==,k YQ=="}, 400),
        ({"Upload-Length": "5", "Upload-Metadata": "k\u00e9 YQ=="}, 400),
    ],
)
async def test_bad_creation_headers(client: TestClient, headers: dict[str, str], status: int, storage_dir) -> None:  # type: ignore[no-untyped-def]
    resp = await client.post("/files/", headers={**TUS, **headers})
    assert resp.status == status
    assert (await resp.text()).strip()
    assert upload_files(storage_dir) == []  # nothing half-created


async def test_413_reason_states_the_limit(client: TestClient) -> None:
    resp = await client.post("/files/", headers={**TUS, "Upload-Length": str(10**9)})
    assert resp.status == 413 and str(64 * 1024 * 1024) in await resp.text()


async def test_body_beyond_length_is_refused_before_writing(client: TestClient) -> None:
    path = await create(client, 4)
    resp = await patch(client, path, 0, b"0123456789")
    assert resp.status == 413
    assert await offset_of(client, path) == 0


async def test_chunked_body_beyond_length_keeps_only_what_fits(client: TestClient) -> None:
    path = await create(client, 4)

    async def gen():  # type: ignore[no-untyped-def]
        yield b"01"
        yield b"23456"

    resp = await client.patch(path, headers={**TUS, **OCTET, "Upload-Offset": "0"}, data=gen())
    assert resp.status == 413
    assert await offset_of(client, path) == 4
    assert await (await client.get(path)).read() == b"0123"


async def test_creation_with_upload(client: TestClient) -> None:
    resp = await client.post("/files/", headers={**TUS, **OCTET, "Upload-Length": "6"}, data=b"abc")
    assert resp.status == 201
    assert resp.headers["Upload-Offset"] == "3"
    path = path_of(resp.headers["Location"])
    assert (await patch(client, path, 3, b"def")).status == 204
    assert await (await client.get(path)).read() == b"abcdef"


async def test_creation_body_with_other_content_type_is_refused_not_dropped(client: TestClient) -> None:
    """A body the server would not store is refused with a reason, and no upload is made."""
    resp = await client.post(
        "/files/", headers={**TUS, "Upload-Length": "6", "Content-Type": "text/plain"}, data=b"abc"
    )
    assert resp.status == 415 and "application/offset+octet-stream" in await resp.text()
    assert "Location" not in resp.headers
    empty = await client.post("/files/", headers={**TUS, "Upload-Length": "6", "Content-Type": "text/plain"})
    assert empty.status == 201  # no body, nothing to drop: any Content-Type is fine


async def test_deferred_length(client: TestClient) -> None:
    path = await create(client, None, Upload_Defer_Length="1")
    head = await client.head(path, headers=TUS)
    assert head.headers["Upload-Defer-Length"] == "1" and "Upload-Length" not in head.headers
    assert (await patch(client, path, 0, b"abc")).status == 204
    get = await client.get(path)
    assert get.status == 409  # not finished: length unknown
    assert (await patch(client, path, 3, b"de", Upload_Length="5")).status == 204
    assert await (await client.get(path)).read() == b"abcde"


async def test_termination(client: TestClient, storage_dir) -> None:  # type: ignore[no-untyped-def]
    path = await create(client, 10)
    await patch(client, path, 0, b"abc")
    assert (await client.delete(path, headers=TUS)).status == 204
    assert (await client.head(path, headers=TUS)).status == 404
    assert (await patch(client, path, 3, b"d")).status == 404
    assert upload_files(storage_dir) == []


@pytest.mark.parametrize("bad", ["..%2F..%2Fetc%2Fpasswd", "a.info", "%00", "x" * 200, "%C3%A9"])
async def test_malformed_ids_are_404(client: TestClient, bad: str) -> None:
    for method in ("HEAD", "PATCH", "DELETE", "GET"):
        resp = await client.request(method, "/files/" + bad, headers={**TUS, **OCTET, "Upload-Offset": "0"})
        assert resp.status == 404, (method, bad)


async def test_method_override(client: TestClient) -> None:
    path = await create(client, 3)
    resp = await client.post(
        path, headers={**TUS, **OCTET, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"}, data=b"abc"
    )
    assert resp.status == 204 and resp.headers["Upload-Offset"] == "3"
    resp = await client.post(path, headers={**TUS, "X-HTTP-Method-Override": "DELETE"})
    assert resp.status == 204


async def test_unsupported_method_is_405_with_allow(client: TestClient) -> None:
    resp = await client.put("/files/", headers=TUS)
    assert resp.status == 405
    assert "POST" in resp.headers["Allow"]


async def test_every_response_carries_request_id(client: TestClient) -> None:
    resp = await client.head("/files/nope", headers={**TUS, "X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = await client.head("/files/nope", headers={**TUS, "X-Request-ID": "bad id with spaces"})
    assert resp.headers["X-Request-ID"] != "bad id with spaces" and len(resp.headers["X-Request-ID"]) == 16


async def test_digest_comes_from_processing_and_never_revives_a_deleted_upload(client: TestClient, storage_dir) -> None:  # type: ignore[no-untyped-def]
    service = client.app[SERVICE_KEY]
    path = await create(client, 3)
    upload_id = id_of(path)
    assert "Repr-Digest" not in (await patch(client, path, 0, b"abc")).headers  # not on the write path
    head = await processed_head(client, path)
    expected = base64.b64encode(hashlib.sha256(b"abc").digest()).decode()
    assert head.headers["Repr-Digest"] == f"sha-256=:{expected}:"
    assert (await client.get(path)).headers["ETag"] == f'"{hashlib.sha256(b"abc").hexdigest()}"'
    # an unfinished upload never gets one, and a late digest for a deleted upload recreates nothing
    other = await create(client, 5)
    other_id = id_of(other)
    await service.record_digest(other_id, "00" * 32)
    assert (await service.store.get_info(other_id)).sha256 is None
    assert (await client.delete(path, headers=TUS)).status == 204
    await service.record_digest(upload_id, "00" * 32)
    assert not [name for name in upload_files(storage_dir) if name.startswith(upload_id)]


async def test_a_digest_is_recorded_without_the_uploads_lock_where_the_store_can(client: TestClient) -> None:
    """Processing's digest costs the lock service nothing on a filesystem with xattrs (issue 27's
    Redis budget): recorded while another request holds the upload's lock, it does not wait."""
    service = client.app[SERVICE_KEY]
    if not getattr(service.store, "uses_xattrs", False):
        pytest.skip("no user xattrs here: the digest goes into the info file, under the lock")
    path = await create(client, 3)
    await patch(client, path, 0, b"abc")
    await processed_head(client, path)
    upload_id = id_of(path)
    async with service.locker.lock(upload_id):  # the locked path would wait here, then answer 423
        await asyncio.wait_for(service.record_digest(upload_id, "11" * 32), 1.0)
    assert (await service.store.get_info(upload_id)).sha256 == "11" * 32


@pytest.mark.parametrize("durable", [False, True])
async def test_fsync_flag_flushes_every_patch_before_answering(
    aiohttp_client, storage_dir, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:  # type: ignore[no-untyped-def]
    flushed: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # observes the real call: a power cut cannot be staged in a test
        flushed.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    args = parse_args(["--storage-dir", str(storage_dir), *(["--fsync"] if durable else [])])
    client = await aiohttp_client(make_app(load_config(args, {})))
    path = await create(client, 6)
    created = len(flushed)
    assert (await patch(client, path, 0, b"abc")).status == 204
    assert (len(flushed) > created) is durable  # the PATCH's bytes reached the disk before 204
    assert (created > 0) is durable  # and the info written at creation
