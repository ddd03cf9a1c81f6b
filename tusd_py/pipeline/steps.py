"""Processing steps: named async callables run, in registration order, on each finished upload.

A step is ``async def step(ctx: StepContext) -> dict``; what it returns is stored with the
recording under the step's name (so it must be JSON-serialisable). A step that raises fails the
attempt, and the whole job is retried later with backoff.

Execution is **at least once, with one claimant at a time**: a job whose worker died, froze past
its lease (PostgreSQL store) or was cut at shutdown runs again from its first step, possibly on
another instance, and the old claimant's report is ignored. So every step must be safe to run
again: the same input gives the same result, and whatever it publishes (the digest into the
upload's info) is written idempotently, never appended or counted
(``tests/pipeline/test_pipeline_steps.py`` runs the built-in steps twice).

Raise :class:`PermanentStepError` when retrying cannot help (the bytes are gone, the input
is not audio at all), and the job fails at once.

Built-in steps, in this order: ``digest`` (the whole upload's SHA-256, read back from storage
once it has landed, so the write path never hashes what the client did not ask to verify) and
``analysis`` (:func:`tusd_py.pipeline.analysis.analyse_file`); both run in a thread, except on
uploads of at most ``INLINE_BYTES``, where the work (microseconds) costs less than the hand-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from storage_backends.base import DataStore
from tusd_py.model.upload import UploadInfo
from tusd_py.pipeline.analysis import CompressionPolicy, analyse_file
from tusd_py.pipeline.models import Job, Recording
from tusd_py.pipeline.spool import local_copy

T = TypeVar("T")
#: Uploads up to this size are hashed and analysed on the event loop (bench/ small: 4 KiB in
#: ~0.1 ms, against two thread hand-offs per step of a loaded 2-core machine).
INLINE_BYTES = 64 * 1024


async def blocking(size: int, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` on the event loop for an upload of at most INLINE_BYTES, else in a thread."""
    if size <= INLINE_BYTES:
        return func(*args)
    return await asyncio.to_thread(func, *args)


class PermanentStepError(Exception):
    """A step failure that another attempt would repeat: the job fails without retrying."""


@dataclass
class StepContext:
    """What a step gets: the recording, its upload, the storage backend and earlier results."""

    recording: Recording
    job: Job
    info: UploadInfo
    data_store: DataStore
    #: Results of the steps that already ran in this attempt, by step name.
    results: dict[str, Any] = field(default_factory=dict)
    spool_dir: str | None = None
    _files: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _path: Path | None = None

    async def local_path(self) -> Path:
        """A local file with the upload's bytes, fetched once per attempt and shared by all steps."""
        if self._path is None:
            self._path = await self._files.enter_async_context(local_copy(self.data_store, self.info, self.spool_dir))
        return self._path

    async def aclose(self) -> None:
        await self._files.aclose()


Step = Callable[[StepContext], Awaitable[dict[str, Any]]]
#: Stores a digest where the protocol can serve it: ``(upload_id, sha256 hex)``, e.g. TusService.record_digest.
DigestPublisher = Callable[[str, str], Awaitable[None]]


class StepRegistry:
    def __init__(self) -> None:
        self._steps: dict[str, Step] = {}

    def register(self, name: str, step: Step) -> None:
        if name in self._steps:
            raise ValueError(f"a step named {name!r} is already registered")
        self._steps[name] = step

    def unregister(self, name: str) -> None:
        self._steps.pop(name, None)

    def names(self) -> list[str]:
        return list(self._steps)

    def __iter__(self) -> Iterator[tuple[str, Step]]:
        return iter(list(self._steps.items()))

    def __len__(self) -> int:
        return len(self._steps)


def analysis_step(policy: CompressionPolicy) -> Step:
    """The built-in step: describe the recording and advise on transcoding it."""

    async def analysis(ctx: StepContext) -> dict[str, Any]:
        path = await ctx.local_path()
        result = await blocking(ctx.info.offset, analyse_file, path, policy)
        return result.to_dict()

    return analysis


def sha256_of_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def digest_step(publish: DigestPublisher | None) -> Step:
    """The built-in step: the SHA-256 of the stored bytes, published to the upload's info."""

    async def digest(ctx: StepContext) -> dict[str, Any]:
        sha256 = ctx.info.sha256
        if sha256 is None:
            sha256 = await blocking(ctx.info.offset, sha256_of_file, await ctx.local_path())
            if publish is not None:
                await publish(ctx.info.id, sha256)
        return {"sha256": sha256}

    return digest


def default_registry(
    policy: CompressionPolicy | None = None, publish_digest: DigestPublisher | None = None
) -> StepRegistry:
    registry = StepRegistry()
    registry.register("digest", digest_step(publish_digest))
    registry.register("analysis", analysis_step(policy or CompressionPolicy()))
    return registry
