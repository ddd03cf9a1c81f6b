"""Failures of storage every layer may meet: a backend raises them, the service maps them to statuses.

Here rather than beside the backends so the layers above can name them (and a fence can be a
storage failure) without importing a backend package.
"""

from __future__ import annotations


class StorageError(Exception):
    """A backend failure that is not the client's fault (maps to 500)."""


class StorageUnavailable(StorageError):
    """The backing store cannot be reached right now; the client should retry (maps to 503)."""


class StorageFull(StorageError):
    """No space left (ENOSPC, EDQUOT): what arrived before is kept; writing more fails until
    space is freed (maps to 507 Insufficient Storage)."""


class UploadNotFound(Exception):
    """No upload with this id exists (or it was terminated / expired)."""


class VerificationFailed(Exception):
    """Raised by a ``verify`` callback: the write is rejected and none of its bytes are kept."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
