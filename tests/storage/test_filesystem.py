import builtins
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from storage_backends import file_facts
from storage_backends.filesystem import WRITE_BATCH, FileStore
from tusd_py.model.storage_errors import StorageError, UploadNotFound, VerificationFailed
from tusd_py.model.upload import BodyEnded, EndReason, UploadInfo
from tusd_py.protocol.upload_state import is_complete


async def chunks(*parts: bytes, fail_after: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail_after:
        raise BodyEnded(EndReason.CLIENT_GONE, "client went away")


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
    assert fresh.offset == 11 and is_complete(fresh)
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
    with pytest.raises(BodyEnded):
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
    with pytest.raises(BodyEnded):
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


# -- metadata operations per upload: info written once, finish facts in an xattr ----------------

FACTS_XATTR = "user.tusd_py.finish"
DIGEST = "ab" * 32


@pytest.fixture
async def xattr_store(store: FileStore) -> FileStore:
    if not store.uses_xattrs:
        pytest.skip(f"the file system of {store.directory} takes no user xattrs")
    return store


async def finished_upload(store: FileStore, upload_id: str, payload: bytes = b"data") -> UploadInfo:
    """An upload with every byte stored, not yet finished."""
    await store.create(UploadInfo(id=upload_id, length=len(payload), metadata={"name": b"x"}))
    info = await store.get_info(upload_id)
    info.offset = await store.write(info, chunks(payload))
    return info


def listing(store: FileStore) -> set[str]:
    return set(os.listdir(store.directory))


@contextlib.contextmanager
def spy_file_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Files opened for writing with ``open`` and ``os.replace`` calls, while the block runs."""
    writes: list[str] = []
    real_open, real_replace = builtins.open, os.replace

    def spy_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(flag in mode for flag in "wxa+"):
            writes.append(f"open {os.path.basename(file)} {mode}")
        return real_open(file, mode, *args, **kwargs)

    def spy_replace(source: Any, target: Any) -> None:
        writes.append(f"replace {os.path.basename(source)}")
        real_replace(source, target)

    with monkeypatch.context() as patched:
        patched.setattr(builtins, "open", spy_open)
        patched.setattr(os, "replace", spy_replace)
        yield writes


async def test_create_writes_data_and_info_only(store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    with spy_file_writes(monkeypatch) as writes:
        await store.create(UploadInfo(id="new", length=5, metadata={"k": b"v"}))
    assert writes == ["open new.info xb"]  # straight to its final name: no temp file, no rename
    assert listing(store) == {"new", "new.info"}
    info = msgspec.json.decode((store.directory / "new.info").read_bytes(), type=UploadInfo)
    assert (info.id, info.length, info.metadata) == ("new", 5, {"k": b"v"})


async def test_create_over_a_stray_info_file_is_refused_and_leaves_it(store: FileStore) -> None:
    (store.directory / "s.info").write_bytes(b"{}")
    with pytest.raises(StorageError):
        await store.create(UploadInfo(id="s", length=1))
    assert listing(store) == {"s.info"}


async def test_finish_sets_an_xattr_and_creates_no_file(
    xattr_store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = xattr_store
    info = await finished_upload(store, "f")
    info_path = store.directory / "f.info"
    before = (info_path.read_bytes(), info_path.stat().st_ino, listing(store))
    with spy_file_writes(monkeypatch) as writes:
        info.finished_at, info.sha256 = 1234.5, DIGEST
        await store.finish(info)
    assert writes == []  # no temp file, not even one renamed away again
    assert (info_path.read_bytes(), info_path.stat().st_ino, listing(store)) == before
    assert FACTS_XATTR in os.listxattr(store.directory / "f")
    got = await store.get_info("f")
    assert (got.finished_at, got.sha256, got.offset) == (1234.5, DIGEST, 4)
    fresh = FileStore(store.directory)
    await fresh.start()
    again = await fresh.get_info("f")
    assert (again.finished_at, again.sha256, again.metadata) == (1234.5, DIGEST, {"name": b"x"})


async def test_finish_without_digest_then_digest_later_is_xattr_only(xattr_store: FileStore) -> None:
    store = xattr_store
    info = await finished_upload(store, "g")
    info.finished_at = 99.0
    await store.finish(info)  # the digest is computed by post-finish processing, later
    inode = (store.directory / "g.info").stat().st_ino
    later = await store.get_info("g")
    assert (later.finished_at, later.sha256) == (99.0, None)
    later.sha256 = DIGEST
    await store.update_info(later)
    assert (store.directory / "g.info").stat().st_ino == inode
    assert listing(store) == {"g", "g.info"}
    stored = msgspec.json.decode(os.getxattr(store.directory / "g", FACTS_XATTR))
    assert stored == {"finished_at": 99.0, "sha256": DIGEST}
    got = await store.get_info("g")
    assert (got.finished_at, got.sha256) == (99.0, DIGEST)


async def test_a_digest_needs_no_lock_and_lands_only_on_the_finished_file_it_opened(
    xattr_store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """record_digest writes without the upload's lock: the one descriptor it reads and writes
    through is what keeps it off an upload terminated and made anew under the same id between its
    read and its write. Setting the xattr by path instead would mark the new, unfinished upload
    finished (with the old digest)."""
    store = xattr_store
    info = await finished_upload(store, "dg")
    info.finished_at = 5.0
    await store.finish(info)
    inode = (store.directory / "dg.info").stat().st_ino
    with spy_file_writes(monkeypatch) as writes:
        assert await store.record_digest("dg", DIGEST)
        assert await store.record_digest("dg", DIGEST)  # recorded already
    assert writes == [] and (store.directory / "dg.info").stat().st_ino == inode
    got = await store.get_info("dg")
    assert (got.finished_at, got.sha256) == (5.0, DIGEST)

    info = await finished_upload(store, "re")
    info.finished_at = 6.0
    await store.finish(info)
    read = file_facts.read

    def then_made_anew(path: Path | int) -> file_facts.Facts:
        facts = read(path)
        monkeypatch.setattr(file_facts, "read", read)
        store._terminate_sync("re")  # another instance deletes it between read and write ...
        store._create_sync(UploadInfo(id="re", length=9))  # ... and someone makes it anew
        return facts

    monkeypatch.setattr(file_facts, "read", then_made_anew)
    assert await store.record_digest("re", DIGEST)  # landed on the unlinked file: nobody's
    fresh = await store.get_info("re")
    assert (fresh.length, fresh.offset, fresh.finished_at, fresh.sha256) == (9, 0, None, None)


async def test_a_digest_is_left_to_the_locked_path_where_no_descriptor_can_make_it_safe(
    xattr_store: FileStore, tmp_path: Path
) -> None:
    store = xattr_store
    await finished_upload(store, "open")
    assert not await store.record_digest("open", DIGEST)  # not finished: the core decides, locked
    assert (await store.get_info("open")).sha256 is None
    assert await store.record_digest("gone", DIGEST)  # nothing to record, nothing made
    assert not any(name.startswith("gone") for name in listing(store))
    plain = FileStore(tmp_path / "plain", xattrs=False)  # facts in the info file: a rename, not conditional
    await plain.start()
    info = await finished_upload(plain, "p")
    info.finished_at = 1.0
    await plain.finish(info)
    assert not await plain.record_digest("p", DIGEST)
    assert (await plain.get_info("p")).sha256 is None


async def test_update_info_of_the_info_itself_rewrites_it_and_keeps_the_facts(xattr_store: FileStore) -> None:
    store = xattr_store
    info = await finished_upload(store, "h")
    info.finished_at, info.sha256 = 7.0, DIGEST
    await store.finish(info)
    inode = (store.directory / "h.info").stat().st_ino
    changed = await store.get_info("h")
    changed.metadata = {"name": b"renamed"}
    changed.sha256 = None  # a stale copy never clears a fact
    await store.update_info(changed)
    assert (store.directory / "h.info").stat().st_ino != inode
    assert listing(store) == {"h", "h.info"}
    on_disk = msgspec.json.decode((store.directory / "h.info").read_bytes(), type=UploadInfo)
    assert (on_disk.metadata, on_disk.finished_at, on_disk.sha256) == ({"name": b"renamed"}, 7.0, DIGEST)
    got = await store.get_info("h")
    assert (got.metadata, got.finished_at, got.sha256) == ({"name": b"renamed"}, 7.0, DIGEST)


async def test_length_change_rewrites_the_info_file(xattr_store: FileStore) -> None:
    store = xattr_store
    await store.create(UploadInfo(id="dl", length=None))
    inode = (store.directory / "dl.info").stat().st_ino
    info = await store.get_info("dl")
    info.length = 10
    await store.update_info(info)
    assert (store.directory / "dl.info").stat().st_ino != inode
    assert (await FileStore(store.directory).get_info("dl")).length == 10
    assert FACTS_XATTR not in os.listxattr(store.directory / "dl")  # nothing to record yet


async def test_without_xattrs_the_facts_go_into_the_info_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "plain", xattrs=False)
    await store.start()
    assert not store.uses_xattrs
    info = await finished_upload(store, "p")
    inode = (store.directory / "p.info").stat().st_ino
    info.finished_at, info.sha256 = 5.0, DIGEST
    await store.finish(info)
    assert (store.directory / "p.info").stat().st_ino != inode
    assert FACTS_XATTR not in os.listxattr(store.directory / "p")
    on_disk = msgspec.json.decode((store.directory / "p.info").read_bytes(), type=UploadInfo)
    assert (on_disk.finished_at, on_disk.sha256) == (5.0, DIGEST)
    got = await store.get_info("p")
    assert (got.finished_at, got.sha256) == (5.0, DIGEST)
    assert listing(store) == {"p", "p.info"}


async def test_fsync_mode_finishes_through_the_xattr(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "synced", fsync=True)
    await store.start()
    info = await finished_upload(store, "y")
    info.finished_at, info.sha256 = 3.0, DIGEST
    await store.finish(info)
    got = await store.get_info("y")
    assert (got.finished_at, got.sha256, got.offset) == (3.0, DIGEST, 4)
    assert listing(store) == {"y", "y.info"}
    if store.uses_xattrs:
        assert FACTS_XATTR in os.listxattr(store.directory / "y")


async def test_torn_info_is_a_storage_error_and_swept_once_old(store: FileStore) -> None:
    await store.create(UploadInfo(id="torn", length=10, metadata={"k": b"v"}))
    info_path = store.directory / "torn.info"
    info_path.write_bytes(info_path.read_bytes()[:20])  # a crash mid-create
    (store.directory / "torn.pending").write_bytes(b"")
    with pytest.raises(StorageError):
        await store.get_info("torn")
    now = time.time()
    assert await store.sweep_orphans(now - 3600) == 0  # too recent: maybe still being written
    assert "torn.info" in listing(store)
    past = now - 7200
    for name in ("torn", "torn.info", "torn.pending"):
        os.utime(store.directory / name, (past, past))
    assert await store.sweep_orphans(now - 3600) == 3
    assert listing(store) == set()


async def test_unreadable_info_next_to_stored_bytes_is_never_swept(store: FileStore) -> None:
    await store.create(UploadInfo(id="torn", length=10))
    (store.directory / "torn").write_bytes(b"12345")  # bytes a client sent
    (store.directory / "torn.info").write_bytes(b'{"id": "to')
    past = time.time() - 7200
    for name in ("torn", "torn.info"):
        os.utime(store.directory / name, (past, past))
    assert await store.sweep_orphans(time.time() - 3600) == 0
    assert (store.directory / "torn").read_bytes() == b"12345"


async def test_info_without_data_is_swept_once_old(store: FileStore) -> None:
    await store.create(UploadInfo(id="kept", length=1))
    await store.create(UploadInfo(id="lost", length=1))
    (store.directory / "lost").unlink()
    now = time.time()
    assert await store.sweep_orphans(now - 3600) == 0
    past = now - 7200
    for name in ("kept", "kept.info", "lost.info"):
        os.utime(store.directory / name, (past, past))
    assert await store.sweep_orphans(now - 3600) == 1
    assert listing(store) == {"kept", "kept.info"}
    assert (await store.get_info("kept")).length == 1


async def test_a_digest_recorded_with_fsync_goes_through_the_thread_and_lands(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "synced", fsync=True)
    await store.start()
    if not store.uses_xattrs:
        pytest.skip(f"the file system of {store.directory} takes no user xattrs")
    info = await finished_upload(store, "sy")
    info.finished_at = 7.0
    await store.finish(info)
    assert await store.record_digest("sy", DIGEST)
    got = await store.get_info("sy")
    assert (got.finished_at, got.sha256) == (7.0, DIGEST)
