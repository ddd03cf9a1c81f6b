"""The filesystem backend's sweep of debris: files a crash or an interrupted request left behind.

Staging files, temp info files, data files without info, info files without data, and uploads
whose info file is unreadable (torn by a crash during creation) are removed once untouched since
``older_than``. Bytes a client sent are never deleted by guesswork.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from tusd_py.model.upload import UPLOAD_ID, UploadInfo

INFO_SUFFIX = ".info"
PENDING_SUFFIX = ".pending"
FENCE_SUFFIX = ".fence"  # see file_fence.py


InfoReader = Callable[[str], UploadInfo | None]  # an upload's decoded info, or None


def sweep_orphans(directory: Path, older_than: float, read_info: InfoReader) -> int:
    """Remove the debris in ``directory``; ``read_info`` decodes an upload's info or gives None."""
    removed = 0
    names = set(os.listdir(directory))
    for name in names:
        path = directory / name
        if name.endswith(INFO_SUFFIX):
            removed += _sweep_info(directory, name[: -len(INFO_SUFFIX)], older_than, read_info)
            continue
        stray = name.endswith((PENDING_SUFFIX, ".tmp")) or (
            UPLOAD_ID.fullmatch(name) is not None and name + INFO_SUFFIX not in names
        )
        if name.endswith(FENCE_SUFFIX):  # a fence outlives nothing but its upload
            stray = name[: -len(FENCE_SUFFIX)] + INFO_SUFFIX not in names
        try:
            if stray and path.stat().st_mtime < older_than:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _sweep_info(
    directory: Path, upload_id: str, older_than: float, read_info: Callable[[str], UploadInfo | None]
) -> int:
    """Remove an old info file that has no data file, or that cannot be decoded while its data
    file is empty (a crash mid-create), with its upload's files.

    An unreadable info next to stored bytes is kept: get_info reports it as a storage error for an
    operator to look at.
    """
    if not UPLOAD_ID.fullmatch(upload_id):
        return 0
    info_path, data_path = directory / (upload_id + INFO_SUFFIX), directory / upload_id
    try:
        if info_path.stat().st_mtime >= older_than:
            return 0
    except FileNotFoundError:
        return 0
    try:
        stored_bytes: int | None = data_path.stat().st_size
    except FileNotFoundError:
        stored_bytes = None
    if stored_bytes is not None and (stored_bytes > 0 or read_info(upload_id) is not None):
        return 0
    removed = 0
    # Info first, as in terminate: once it is gone the upload no longer exists for any reader.
    for path in (info_path, data_path, directory / (upload_id + PENDING_SUFFIX)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed
