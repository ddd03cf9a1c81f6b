"""The storage interface every backend implements.

A backend stores upload state (:class:`UploadInfo`) and upload bytes. It knows nothing of HTTP:
the protocol core validates offsets, lengths and ownership before a backend sees a byte, and
holds the upload's lock around every mutating call (but :meth:`DataStore.record_digest`, which a
backend makes conditional by itself), so a backend never sees two concurrent writers of one upload
*from this process*. (Backends shared by several server instances rely
on a shared :class:`tusd_py.locks.locker.Locker`, whose lease a paused holder can lose: the
:class:`~tusd_py.model.fencing.Fence` passed to :meth:`DataStore.write` guards the commits.)

Capabilities are optional, like tusd's optional store interfaces: the server advertises in
``Tus-Extension`` only what the configured backend declares in :attr:`DataStore.capabilities`.
"""

from __future__ import annotations

import abc
import contextlib
import errno
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

from tusd_py.model.storage_errors import StorageFull
from tusd_py.model.upload import UploadInfo

if TYPE_CHECKING:
    from tusd_py.model.fencing import Fence

#: Capability names a backend may declare; the strings are the tus extension names they enable.
CAP_TERMINATION = "termination"
CAP_DEFER_LENGTH = "creation-defer-length"
CAP_CONCATENATION = "concatenation"
CAP_EXPIRATION = "expiration"

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


@contextlib.contextmanager
def no_space_is_storage_full() -> Iterator[None]:
    """Around local-disk I/O: ENOSPC / EDQUOT become :class:`StorageFull`, other errors pass."""
    try:
        yield
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise StorageFull(f"no space left on the storage device: {exc}") from exc
        raise


class DataStore(abc.ABC):
    """One storage backend. All methods are coroutines and must not block the event loop."""

    #: Which optional tus extensions this backend supports (see the CAP_* constants).
    capabilities: frozenset[str] = frozenset()

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Check configuration and connectivity; raise :class:`StorageError` to refuse to start."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and background resources."""

    @abc.abstractmethod
    async def create(self, info: UploadInfo) -> None:
        """Persist a new, empty upload. ``info.id`` has been validated by the caller."""

    @abc.abstractmethod
    async def get_info(self, upload_id: str) -> UploadInfo:
        """Return the upload's info with its durable offset; raise :class:`UploadNotFound`."""

    @abc.abstractmethod
    async def update_info(self, info: UploadInfo, fence: Fence | None = None) -> None:
        """Persist changed fields of ``info`` (length, metadata, finished_at, sha256...). Never the offset.

        The backend owns ``backend_state``: it keeps its own and never takes the caller's copy.
        Like every state-changing call below, it confirms ``fence`` (``fencing.confirm``) before
        it commits, so a holder that lost its lock changes nothing.
        """

    @abc.abstractmethod
    async def write(
        self,
        info: UploadInfo,
        chunks: AsyncIterable[bytes],
        verify: Callable[[], None] | None = None,
        fence: Fence | None = None,
    ) -> int:
        """Append ``chunks`` at ``info.offset`` and return the new durable offset.

        ``info`` must be the one :meth:`get_info` returned under the same lock: backends may rely
        on its ``backend_state`` (the S3 part ledger) instead of re-reading it, which is what keeps
        a PATCH within its request budget.

        If ``chunks`` raises :class:`BodyEnded` (the client went away or stalled, sent too much, or
        another request asked for the lock), the bytes that did arrive are made durable before it
        propagates: nothing a client uploaded is lost. If ``verify`` is given, the write is
        all-or-nothing: it is called once the stream ended; if it raises :class:`VerificationFailed`,
        or if ``chunks`` raises, none of this call's bytes are kept and the offset stays where it was.
        The caller never passes more bytes than ``info.remaining`` allows.

        ``fence`` comes with the lock the caller holds (:mod:`tusd_py.model.fencing`): with a
        token above 0 the backend checks it before each commit point and lets :class:`FenceLost`
        propagate, keeping nothing after the refused commit.
        """

    @abc.abstractmethod
    async def finish(self, info: UploadInfo, fence: Fence | None = None) -> None:
        """Called once when the last byte is stored, with ``finished_at`` and ``sha256`` set.

        Persists them and does backend-specific completion (e.g. CompleteMultipartUpload).
        Must be idempotent: after a crash it may be called again for the same upload.
        """

    async def record_digest(self, upload_id: str, sha256: str) -> bool:
        """Store the whole-upload SHA-256 (computed by post-finish processing) on a finished upload,
        *without* the upload's lock; False if this backend cannot, and the core then takes the lock.

        A backend that implements it makes the write conditional on the very upload it read: finished,
        and unchanged since (the same file, the same object version). So it never brings back an
        upload terminated meanwhile, never marks an upload made anew under the same id, and never
        undoes another writer's change; it needs no fence because no lock holder can be cut short by
        it (a finished upload's bytes and facts never change, and the digest is a function of its
        bytes). True: recorded, already recorded, or the upload is gone. False (nothing written):
        not possible here, not finished, or changed under the write: the locked path decides.
        """
        return False

    @abc.abstractmethod
    def read(self, info: UploadInfo, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end)`` of the upload (``end`` defaults to its offset).

        May be called once every byte is in but before :meth:`finish` (the core computes a lost
        whole-upload digest then), so a backend may have to seal the upload here to read it.
        """

    @abc.abstractmethod
    async def terminate(self, upload_id: str, fence: Fence | None = None) -> None:
        """Delete the upload and every byte of it. Raise :class:`UploadNotFound` if unknown."""

    async def concatenate(self, final: UploadInfo, partials: list[UploadInfo], fence: Fence | None = None) -> None:
        """Fill ``final`` (already created, empty or partly filled by an interrupted earlier call)
        with the bytes of the finished ``partials`` in order. Idempotent: after a crash it is
        called again and must then produce exactly the concatenation, never a doubled prefix."""
        raise NotImplementedError

    @abc.abstractmethod
    def list_uploads(self) -> AsyncIterator[UploadInfo]:
        """Every upload the backend holds, for the expiration sweeper and crash recovery."""

    def location(self, upload_id: str) -> dict[str, str]:
        """Where the upload's bytes live, for hook events: ``{"type": "filesystem", "path": ...}``
        or ``{"type": "s3", "bucket": ..., "key": ...}``. No I/O; empty if a backend cannot say."""
        return {}

    async def sweep_orphans(self, older_than: float) -> int:
        """Remove backend debris no upload refers to any more (e.g. abandoned S3 multipart
        uploads, stale staging files) last touched before the ``older_than`` timestamp."""
        return 0
