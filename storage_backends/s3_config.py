"""Configuration of the S3 backend."""

from __future__ import annotations

import msgspec

from storage_backends.s3_ledger import MAX_PART_SIZE, MIB, MIN_PART_SIZE


class S3Config(msgspec.Struct, kw_only=True, frozen=True):
    """Where and how the S3 backend stores uploads.

    Fields:

    - ``bucket``: the bucket; it must exist (``start()`` checks it with HeadBucket).
    - ``prefix``: key prefix for every object of this server, e.g. ``"tus/"``. Upload ``ID`` is
      stored as ``<prefix>ID`` (the data, one multipart upload), ``<prefix>ID.info`` (its state,
      the commit point) and ``<prefix>ID.part.<offset>`` (tail segments smaller than a part).
    - ``endpoint_url``: any S3-compatible endpoint (MinIO, SeaweedFS, R2...); ``None`` for AWS.
    - ``region``: the signing region; ``None`` lets botocore resolve it (``AWS_REGION``, config file).
    - ``path_style``: path-style addressing (``endpoint/bucket/key``), needed by most
      self-hosted S3 servers; virtual-hosted style otherwise.
    - ``part_size``: preferred multipart part size (5 MiB .. 5 GiB). It is raised per upload so that
      S3's 10,000 parts hold the upload's length (or ``max_upload_size`` while it is deferred).
    - ``part_concurrency``: parts uploaded at once by the whole store. Part buffers of all
      concurrent writes share one budget of ``part_size * part_concurrency`` bytes (s3_budget.py);
      each write in progress also keeps up to 1 MiB of its part being filled in memory.
    - ``max_upload_size``: the largest upload this backend must hold (set it to the server's
      maximum size); it sizes the parts of uploads whose length is deferred.
    - ``max_attempts``: botocore attempts per S3 call (standard retry mode) before the call
      fails and the client gets 503.
    - ``connect_timeout`` / ``read_timeout``: seconds, per S3 call attempt.
    - ``sole_writer``: this process is the only one writing under the prefix (one process with
      the in-process locker); the store then reads back the info objects it wrote from memory
      (s3_info_cache.py), so HEAD and the load of a PATCH cost no S3 request. Never with a shared lock.
    - ``access_key_id`` / ``secret_access_key``: for tests only. In production leave them unset:
      credentials come from the standard AWS chain (environment, shared config, instance role).
    """

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    path_style: bool = False
    part_size: int = 8 * MIB
    part_concurrency: int = 4
    max_upload_size: int = 64 * 1024 * MIB
    max_attempts: int = 3
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    sole_writer: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def __post_init__(self) -> None:
        if not self.bucket:
            raise ValueError("S3 bucket must be set")
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise ValueError(f"S3 part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes")
        if self.part_concurrency < 1:
            raise ValueError("S3 part_concurrency must be at least 1")
        if self.prefix.startswith("/"):
            raise ValueError("S3 prefix must not start with '/' (keys are relative to the bucket)")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
