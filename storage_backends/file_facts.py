"""Finish facts of a filesystem upload (``finished_at``, ``sha256``) kept in an extended attribute.

Setting them is one atomic ``setxattr`` on the upload's data file: no file is created or renamed,
which on ext4 costs far more (inode allocation, delayed-allocation flush on rename-over). Facts are
only ever set, never cleared, so a reader overlays the attribute's non-None values on whatever the
info file holds.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import msgspec

from tusd_py.model.storage_errors import StorageError
from tusd_py.model.upload import UploadInfo

XATTR = "user.tusd_py.finish"
_PROBE_XATTR = "user.tusd_py.probe"
#: Whether this platform has the xattr calls at all (Linux does; macOS's Python does not expose them).
AVAILABLE = hasattr(os, "setxattr")
# setxattr errors meaning "no user xattrs here (or no room for one)": the info file keeps the facts then.
_REFUSED = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.ENOSPC, errno.E2BIG, errno.EDQUOT})


class Facts(msgspec.Struct, frozen=True, omit_defaults=True):
    finished_at: float | None = None
    sha256: str | None = None

    def overlaid(self, newer: Facts) -> Facts:
        """``newer``'s facts where it has them, ours elsewhere: a fact is never cleared."""
        return Facts(
            finished_at=self.finished_at if newer.finished_at is None else newer.finished_at,
            sha256=self.sha256 if newer.sha256 is None else newer.sha256,
        )


NO_FACTS = Facts()
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Facts)


def facts_of(info: UploadInfo) -> Facts:
    return Facts(finished_at=info.finished_at, sha256=info.sha256)


def apply(info: UploadInfo, facts: Facts) -> None:
    """Overlay ``facts`` on ``info`` in place."""
    if facts.finished_at is not None:
        info.finished_at = facts.finished_at
    if facts.sha256 is not None:
        info.sha256 = facts.sha256


def supported(probe: Path) -> bool:
    """Whether ``probe``'s file system takes user xattrs: set and remove one."""
    if not AVAILABLE:
        return False
    try:
        os.setxattr(probe, _PROBE_XATTR, b"1")
        os.removexattr(probe, _PROBE_XATTR)
    except OSError:
        return False
    return True


def read(path: str | Path | int) -> Facts:
    """The facts stored on ``path`` or an open descriptor (none if it has no attribute);
    FileNotFoundError if it is gone."""
    try:
        raw = os.getxattr(path, XATTR)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP):
            return NO_FACTS
        raise
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        where = f"descriptor {path}" if isinstance(path, int) else os.path.basename(path)
        raise StorageError(f"finish facts of {where} are unreadable: {exc}") from exc


def write(path: str | Path | int, facts: Facts, *, fsync: bool) -> bool:
    """Store ``facts`` on ``path`` or an open descriptor atomically (replacing what was there);
    False if the file system refuses, so the caller keeps them in the info file instead.
    FileNotFoundError if it is gone."""
    value = _encoder.encode(facts)
    try:
        if not fsync:
            os.setxattr(path, XATTR, value)
            return True
        fd = path if isinstance(path, int) else os.open(path, os.O_RDONLY)
        try:
            os.setxattr(fd, XATTR, value)
            os.fsync(fd)
        finally:
            if fd is not path:
                os.close(fd)
    except OSError as exc:
        if exc.errno in _REFUSED:
            return False
        raise
    return True
