"""tuspy (tusclient 1.x) against the server.

Needs the fixtures `tus_url` and `auth_headers` from tests/conftest.py. tuspy's Uploader is blocking
(requests), so the server must run in another process or thread.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_support import assert_upload_complete, decode_metadata, head_upload, make_payload
from tusclient import client as tus_client
from tusclient.exceptions import TusUploadFailed
from tusclient.storage.filestorage import FileStorage
from tusclient.uploader import Uploader

pytestmark = [
    pytest.mark.interop,
    # tuspy 1.1.0 opens the file given as file_path without closing it (get_file_size, get_file_stream);
    # passing file_stream instead does not work with store_url (its fingerprinting closes the stream).
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

KiB = 1024
MiB = 1024 * KiB
UNICODE_FILENAME = "voix-\u00e9t\u00e9-\u4f1a\u8b70-\U0001f3a4.m4a"


@pytest.fixture(autouse=True)
def _collect_leaked_files() -> Iterator[None]:
    """Frees the file objects tuspy leaked while this module's warning filter still applies."""
    yield
    gc.collect()


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    return make_payload(tmp_path, 2 * MiB + 777, seed=3)


@pytest.fixture
def client(tus_url: str, auth_headers: dict[str, str]) -> tus_client.TusClient:
    return tus_client.TusClient(tus_url, headers=dict(auth_headers))


def test_plain_upload(client: tus_client.TusClient, auth_headers: dict[str, str], payload: Path) -> None:
    uploader = client.uploader(str(payload), metadata={"filename": payload.name})
    uploader.upload()
    assert uploader.url is not None
    assert uploader.offset == payload.stat().st_size
    assert_upload_complete(uploader.url, payload, auth_headers)


def test_chunked_upload_advances_one_chunk_per_patch(
    client: tus_client.TusClient, auth_headers: dict[str, str], payload: Path
) -> None:
    chunk = 256 * KiB
    size = payload.stat().st_size
    uploader = client.uploader(str(payload), chunk_size=chunk, metadata={"filename": payload.name})
    offsets = []
    for _ in range(size // chunk + 2):  # bounded: one more round than needed
        if uploader.offset >= size:
            break
        uploader.upload_chunk()
        offsets.append(uploader.offset)
    # Each PATCH's response offset is exactly the previous one plus the chunk the client sent.
    assert offsets == [min((i + 1) * chunk, size) for i in range(len(offsets))]
    assert offsets[-1] == size
    assert uploader.url is not None
    assert_upload_complete(uploader.url, payload, auth_headers)


def test_resume_from_url_storage(
    client: tus_client.TusClient, auth_headers: dict[str, str], payload: Path, tmp_path: Path
) -> None:
    storage = FileStorage(str(tmp_path / "tuspy-urls.json"))
    first = client.uploader(str(payload), chunk_size=256 * KiB, store_url=True, url_storage=storage)
    first.upload(stop_at=MiB)
    assert first.offset == MiB
    assert first.url is not None

    # A new uploader for the same file finds the URL by fingerprint and HEADs the offset.
    second = client.uploader(str(payload), chunk_size=256 * KiB, store_url=True, url_storage=storage)
    assert second.url == first.url
    assert second.offset == MiB
    second.upload()
    assert second.offset == payload.stat().st_size
    assert_upload_complete(first.url, payload, auth_headers)


def test_unicode_metadata_round_trips(
    client: tus_client.TusClient, auth_headers: dict[str, str], payload: Path
) -> None:
    metadata = {"filename": UNICODE_FILENAME, "filetype": "audio/mp4"}
    uploader = client.uploader(str(payload), metadata=metadata)
    uploader.upload()
    assert uploader.url is not None
    head = assert_upload_complete(uploader.url, payload, auth_headers)
    assert decode_metadata(head.headers.get("upload-metadata")) == metadata


def test_no_metadata_sends_empty_header(
    client: tus_client.TusClient, auth_headers: dict[str, str], payload: Path
) -> None:
    uploader = client.uploader(str(payload))
    # tuspy always sends the header; without metadata its value is empty ("Upload-Metadata: ").
    assert uploader.get_url_creation_headers()["upload-metadata"] == ""
    uploader.upload()
    assert uploader.url is not None
    head = assert_upload_complete(uploader.url, payload, auth_headers)
    assert decode_metadata(head.headers.get("upload-metadata")) == {}


def test_upload_checksum(client: tus_client.TusClient, auth_headers: dict[str, str], payload: Path) -> None:
    uploader = client.uploader(str(payload), chunk_size=512 * KiB, upload_checksum=True)
    uploader.upload()
    assert uploader.url is not None
    assert_upload_complete(uploader.url, payload, auth_headers)


def _sha1_of_other_bytes(data: bytes) -> hashlib._Hash:
    return hashlib.sha1(data + b"x")


class _WrongChecksumUploader(Uploader):  # type: ignore[misc]
    """tuspy with its sha1 swapped for a digest of different bytes: a corrupted-in-transit chunk."""

    CHECKSUM_ALGORITHM_PAIR = ("sha1", _sha1_of_other_bytes)


def test_upload_checksum_mismatch_is_rejected_and_nothing_is_kept(
    tus_url: str, auth_headers: dict[str, str], payload: Path
) -> None:
    client = tus_client.TusClient(tus_url, headers=dict(auth_headers))
    uploader = _WrongChecksumUploader(str(payload), client=client, chunk_size=512 * KiB, upload_checksum=True)
    with pytest.raises(TusUploadFailed) as failure:
        uploader.upload()
    # 460 Checksum Mismatch (tus checksum extension); the chunk is all-or-nothing.
    assert failure.value.status_code == 460
    assert uploader.url is not None
    head = head_upload(uploader.url, auth_headers)
    assert head.headers.get("upload-offset") == "0"


async def test_async_uploader(tus_url: str, auth_headers: dict[str, str], payload: Path) -> None:
    client = tus_client.TusClient(tus_url, headers=dict(auth_headers))
    uploader = client.async_uploader(str(payload), chunk_size=MiB, metadata={"filename": payload.name})
    await uploader.upload()
    assert uploader.url is not None
    assert uploader.offset == payload.stat().st_size
    assert_upload_complete(uploader.url, payload, auth_headers)
