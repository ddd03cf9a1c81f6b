from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage_backends.base import StorageError, UploadInfo, UploadNotFound, VerificationFailed
from storage_backends.filesystem import WRITE_BATCH, FileStore


async def chunks(*parts: bytes, fail_after: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail_after:
        raise ConnectionResetError("client went away")


async def read_all(store: FileStore, info: UploadInfo, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([block async for block in store.read(info, start, end)])


@pytest.fixture
async def store(tmp_path: Path) -> FileStore:
    s = FileStore(tmp_path / "data")
    await s.start()
    return s


async def test_create_write_read_round_trip(store: FileStore) -> None:
    await store.create(UploadInfo(id="abc", length=11, metadata={"k": b"v"}))
    info = await store.get_info("abc")
    assert (info.offset, info.length, info.metadata) == (0, 11, {"k": b"v"})
    info.offset = await store.write(info, chunks(b"hello ", b"world"))
    assert info.offset == 11
    fresh = await store.get_info("abc")
    assert fresh.offset == 11 and fresh.is_finished
    assert await read_all(store, fresh) == b"hello world"
    assert await read_all(store, fresh, 3, 8) == b"lo wo"


async def test_large_write_spans_batches(store: FileStore) -> None:
    payload = bytes(range(256)) * (3 * WRITE_BATCH // 256 + 7)
    await store.create(UploadInfo(id="big", length=len(payload)))
    info = await store.get_info("big")
    pieces = [payload[i : i + 65536] for i in range(0, len(payload), 65536)]
    assert await store.write(info, chunks(*pieces)) == len(payload)
    assert await read_all(store, await store.get_info("big")) == payload


async def test_broken_stream_keeps_the_bytes_that_arrived(store: FileStore) -> None:
    await store.create(UploadInfo(id="cut", length=100))
    info = await store.get_info("cut")
    with pytest.raises(ConnectionResetError):
        await store.write(info, chunks(b"a" * 10, b"b" * 5, fail_after=True))
    assert (await store.get_info("cut")).offset == 15


async def test_verified_write_rejected_keeps_nothing(store: FileStore) -> None:
    await store.create(UploadInfo(id="v", length=100))
    info = await store.get_info("v")
    info.offset = await store.write(info, chunks(b"good"))

    def reject() -> None:
        raise VerificationFailed("checksum mismatch")

    with pytest.raises(VerificationFailed):
        await store.write(info, chunks(b"bad bytes"), reject)
    after = await store.get_info("v")
    assert after.offset == 4
    assert await read_all(store, after) == b"good"
    assert not (store.directory / "v.pending").exists()


async def test_verified_write_broken_stream_keeps_nothing(store: FileStore) -> None:
    await store.create(UploadInfo(id="v2", length=100))
    info = await store.get_info("v2")
    with pytest.raises(ConnectionResetError):
        await store.write(info, chunks(b"x" * 50, fail_after=True), lambda: None)
    assert (await store.get_info("v2")).offset == 0


async def test_verified_write_accepted_appends(store: FileStore) -> None:
    await store.create(UploadInfo(id="v3", length=8))
    info = await store.get_info("v3")
    info.offset = await store.write(info, chunks(b"abcd"))
    assert await store.write(info, chunks(b"efgh"), lambda: None) == 8
    assert await read_all(store, await store.get_info("v3")) == b"abcdefgh"


async def test_update_info_and_finish_persist_but_offset_comes_from_disk(store: FileStore) -> None:
    await store.create(UploadInfo(id="d", length=None))
    info = await store.get_info("d")
    info.length = 3
    info.offset = 999  # never trusted from the info file
    await store.update_info(info)
    again = await store.get_info("d")
    assert again.length == 3 and again.offset == 0
    again.sha256, again.finished_at = "ab" * 32, 1.0
    await store.finish(again)
    assert (await store.get_info("d")).sha256 == "ab" * 32


async def test_terminate_removes_everything(store: FileStore) -> None:
    await store.create(UploadInfo(id="t", length=3))
    await store.terminate("t")
    assert list(store.directory.iterdir()) == []
    with pytest.raises(UploadNotFound):
        await store.get_info("t")
    with pytest.raises(UploadNotFound):
        await store.terminate("t")


@pytest.mark.parametrize("bad_id", ["../etc/passwd", "a/b", "..", ".", "", "a" * 200, "x.info", "é"])
async def test_ids_outside_the_safe_alphabet_never_touch_the_disk(store: FileStore, bad_id: str) -> None:
    with pytest.raises(UploadNotFound):
        await store.get_info(bad_id)
    with pytest.raises(UploadNotFound):
        await store.terminate(bad_id)


async def test_duplicate_id_is_refused(store: FileStore) -> None:
    await store.create(UploadInfo(id="dup", length=1))
    with pytest.raises(StorageError):
        await store.create(UploadInfo(id="dup", length=1))


async def test_corrupt_info_is_a_storage_error_not_a_crash(store: FileStore) -> None:
    await store.create(UploadInfo(id="c", length=1))
    (store.directory / "c.info").write_bytes(b"{not json")
    with pytest.raises(StorageError):
        await store.get_info("c")


async def test_list_uploads_skips_strays(store: FileStore) -> None:
    for name in ("a", "b"):
        await store.create(UploadInfo(id=name, length=1))
    (store.directory / "stray.tmp").write_bytes(b"")
    (store.directory / "orphan.info").write_bytes(b"{}")  # no data file, bad info
    assert sorted([i.id async for i in store.list_uploads()]) == ["a", "b"]


async def test_unwritable_directory_refuses_to_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(StorageError):
        await FileStore(blocker / "sub").start()


async def test_concatenate_is_idempotent_after_a_crash(store: FileStore) -> None:
    parts = {"p1": b"abc", "p2": b"defg"}
    for pid, data in parts.items():
        await store.create(UploadInfo(id=pid, length=len(data), concat="partial"))
        await store.write(await store.get_info(pid), chunks(data))
    await store.create(UploadInfo(id="fin", length=7, concat="final", partials=["p1", "p2"]))
    (store.directory / "fin").write_bytes(b"abcd")  # a crash left half an assembly behind
    partials = [await store.get_info(pid) for pid in parts]
    await store.concatenate(await store.get_info("fin"), partials)
    await store.concatenate(await store.get_info("fin"), partials)  # and a retry changes nothing
    assert (store.directory / "fin").read_bytes() == b"abcdefg"
