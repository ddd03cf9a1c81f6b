"""tus extensions, one module each. ``enabled_extensions`` picks those the backend can serve."""

from __future__ import annotations

from extensions.base import Extension
from extensions.creation import Creation, CreationDeferLength, CreationWithUpload
from extensions.termination import Termination
from storage_backends.base import DataStore

# Order is the order advertised in Tus-Extension.
ALL_EXTENSIONS: tuple[type[Extension], ...] = (
    Creation,
    CreationWithUpload,
    CreationDeferLength,
    Termination,
)


def enabled_extensions(store: DataStore, disabled: list[str] | None = None) -> list[Extension]:
    skip = set(disabled or [])
    return [
        ext()
        for ext in ALL_EXTENSIONS
        if ext.name not in skip and (ext.requires is None or ext.requires in store.capabilities)
    ]
