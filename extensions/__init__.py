"""tus extensions, one module each. ``enabled_extensions`` picks those the backend can serve."""

from __future__ import annotations

from extensions.checksum import Checksum
from extensions.concatenation import Concatenation, ConcatenationUnfinished
from extensions.creation import Creation, CreationDeferLength, CreationWithUpload
from extensions.expiration import Expiration
from extensions.resumable_draft import ResumableUploadDraft
from extensions.termination import Termination
from storage_backends.base import DataStore
from tusd_py.uploads.extension_api import Extension

# Order is the order advertised in Tus-Extension.
ALL_EXTENSIONS: tuple[type[Extension], ...] = (
    Creation,
    CreationWithUpload,
    CreationDeferLength,
    Termination,
    Checksum,
    Concatenation,
    ConcatenationUnfinished,
    Expiration,
    ResumableUploadDraft,  # the IETF draft, not advertised in Tus-Extension
)


def enabled_extensions(store: DataStore, disabled: list[str] | None = None) -> list[Extension]:
    skip = set(disabled or [])
    if "concatenation" in skip:
        skip.add("concatenation-unfinished")
    return [
        ext()
        for ext in ALL_EXTENSIONS
        if ext.name not in skip and (ext.requires is None or ext.requires in store.capabilities)
    ]
