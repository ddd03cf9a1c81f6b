"""Server configuration: one msgspec Struct, filled from CLI flags and TUSD_PY_* environment variables.

Precedence: command-line flag > environment variable > default. The defaults are the embedded
development setup `make run` uses: filesystem storage in ./data on 127.0.0.1:1080.
"""

from __future__ import annotations

import os
import re
from typing import Literal

import msgspec

LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]


class Config(msgspec.Struct, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 1080
    base_path: str = "/files/"
    storage: Literal["filesystem", "s3"] = "filesystem"
    storage_dir: str = "./data"
    # fsync every PATCH's bytes (and every info write) before answering: survives power loss, costs
    # a disk flush per request. Off, a kill -9 still never loses acknowledged bytes (page cache).
    fsync: bool = False
    max_size: int | None = None  # bytes; advertised as Tus-Max-Size
    # Request-body bounds of resumable-upload draft creations and appends, announced in Upload-Limit
    # (e.g. a proxy's body-size limit); tus requests are not bound by them.
    max_append_size: int | None = None
    min_append_size: int | None = None
    cors_origins: list[str] = msgspec.field(default_factory=lambda: ["*"])
    # tusd's CORS settings (tusd_py/http/cors.py). A regular expression searched in the Origin, as tusd's
    # -cors-allow-origin; when set it replaces cors_origins and the origin is echoed back.
    cors_allow_origin: str | None = None
    cors_allow_credentials: bool = False
    cors_allow_methods: list[str] = msgspec.field(default_factory=list)  # added to tus's own
    cors_allow_headers: list[str] = msgspec.field(default_factory=list)  # added, as are hooks_forward_headers
    cors_expose_headers: list[str] = msgspec.field(default_factory=list)  # added to what tus clients read
    cors_max_age: int = 86400
    disable_cors: bool = False
    # Listening on a UNIX socket instead of host and port; HTTPS with a certificate and key.
    unix_socket: str | None = None
    tls_certificate: str | None = None
    tls_key: str | None = None
    tls_mode: Literal["tls12", "tls13", "tls12-strong"] = "tls12"
    disable_download: bool = False  # GET of uploads answers 405, as tusd's -disable-download
    behind_proxy: bool = False  # trust X-Forwarded-Host/Proto and Forwarded for Location URLs
    log_format: LogFormat = "auto"  # auto: readable on a terminal, JSON otherwise
    log_level: LogLevel = "info"
    # How long a request waits for another request on the same upload to let go of it (seconds).
    lock_timeout: float = 3.0
    # Upload locks shared by several instances (tusd_py/locks/redis_locker.py); None: in this process only.
    redis_url: str | None = None
    # Seconds a Redis lock lives unless its holder renews it (every third of it): how long the
    # uploads of a dead or paused instance stay locked, and the longest pause fencing must cover.
    redis_lease: float = 10.0
    # A PATCH whose body sends nothing for this long is ended, keeping the bytes that arrived.
    body_idle_timeout: float = 60.0
    # Grace for in-flight requests on SIGTERM before they are cut (their written bytes are kept).
    shutdown_timeout: float = 10.0
    # Connections (see tusd_py/server/connections.py). A client must deliver its request headers this
    # long after connecting or after starting a request on a kept-alive connection (0: no limit).
    header_timeout: float = 20.0
    # An idle kept-alive connection is closed after this long. Set it above the idle timeout of a
    # proxy in front (nginx upstream keepalive 60 s), or the proxy may reuse a closing connection.
    keepalive_timeout: float = 75.0
    # Worker processes serving one port (SO_REUSEPORT), supervised (tusd_py/server/processes.py); they
    # coordinate through the supervisor's host service and the SQLite file (tusd_py/host/), or
    # through Redis and PostgreSQL. "auto" on the command line: one per core available.
    processes: int = 1
    # Connections served at once; more get 503. 0: three quarters of the open-file limit.
    max_connections: int = 0
    disabled_extensions: list[str] = msgspec.field(default_factory=list)
    # Unfinished uploads expire this long after their last activity (seconds; 0: never).
    # A week by default: phones record offline and may resume days later.
    expire_after: float = 7 * 24 * 3600
    # How often the background sweeper removes expired uploads (seconds; 0: no background sweeps).
    sweep_interval: float = 300

    # JWT auth: on as soon as a key source is given (secret, PEM public key or JWKS file).
    jwt_secret: str | None = None
    # With auth off, the Recordings API is served on loopback only unless this is set (recordings/exposure.py).
    api_without_auth: bool = False
    jwt_public_key: str | None = None  # path of a PEM public key
    jwks: str | None = None  # path of a JWKS file
    # A remote JWKS (an identity provider's), https only; fetched at start, cached per Cache-Control.
    jwks_url: str | None = None
    jwks_ca_file: str | None = None  # PEM CA bundle to trust for --jwks-url (a private CA); default: system
    jwks_min_refresh: float = 30.0  # seconds between fetches caused by unknown kids (rate limit)
    jwt_algorithms: list[str] | None = None  # default: HS256 with a secret, RS256 with a public key
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_user_claim: str = "sub"
    jwt_leeway: float = 30.0

    # Quotas per authenticated user (0: unlimited).
    quota_bytes: int = 500 * 1024 * 1024
    quota_unfinished: int = 50
    # Every creation costs a file, a recording row, a job and events, even an empty one (which is
    # finished at once and so never counts as unfinished): a per-user rate bounds them.
    quota_creations_per_minute: int = 600

    # HTTP webhook receiving hook events (JSON, HMAC-signed when a secret is set).
    hooks_url: str | None = None
    hooks_secret: str | None = None
    hooks_events: list[str] | None = None  # default: every hook type
    hooks_timeout: float = 5.0
    hooks_retries: int = 3
    hooks_fail_open: bool = False  # pre-* hooks that cannot be reached let requests through
    # Durable post-* webhooks (an outbox in the state database): retried with backoff up to
    # hooks_backoff_max seconds apart, for hooks_retention seconds after the event.
    hooks_retention: float = 3 * 24 * 3600.0
    hooks_backoff_max: float = 300.0
    hooks_forward_headers: list[str] = msgspec.field(default_factory=list)  # request headers put in events
    # The webhook's wire format: tusd-py's own (tusd_py/hooks/WEBHOOKS.md) or tusd v2's, for receivers written for tusd.
    hooks_format: Literal["tusd-py", "tusd"] = "tusd-py"
    progress_hooks_interval: float = 1.0  # seconds between post-receive events of one upload

    # S3 backend (--storage s3). Credentials come from the standard AWS chain (environment
    # AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared config and credentials files, instance roles).
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint: str | None = None  # any S3-compatible endpoint; None: AWS
    s3_region: str | None = None
    s3_path_style: bool = False
    s3_part_size: int = 8 * 1024 * 1024
    s3_part_concurrency: int = 4

    # Post-finish processing (recording states, durable job queue, compression analysis).
    state_db: str | None = None  # SQLite file; default: state.sqlite3 in the storage directory
    workers: int = 2  # processing jobs run at once
    job_attempts: int = 5  # attempts per job before the recording is marked failed
    job_retry_delay: float = 2.0  # first retry delay (seconds), doubling per attempt
    compression_threshold: int = 50 * 1024 * 1024  # bytes: smaller uncompressed audio is left alone
    voice_bitrate: int = 32_000  # bit/s of the Opus target used for size estimates
    cleanup_failed_days: float = 7.0  # failed recordings older than this are deleted (0: never)
    cleanup_interval: float = 3600.0  # seconds between cleanup runs (0: none in the background)
    # Shared state in PostgreSQL (recordings, jobs, quotas) for several processes or instances; None: SQLite + memory.
    database_url: str | None = None
    job_lease: float = 60.0  # seconds a claimed job stays an instance's without renewal (PostgreSQL)

    # The offline-first recorder page at /demo/ (static files; the page asks for a token when auth is on).
    demo: bool = False

    # Operations (tusd_py/http/ops_routes.py): Prometheus metrics at /metrics, readiness at /readyz.
    no_metrics: bool = False  # no /metrics at all
    metrics_port: int = 0  # serve /metrics on this port only, not on the main one (0: the main port)
    metrics_path: str = "/metrics"
    readyz_timeout: float = 5.0  # seconds each readiness check may take before it counts as failing

    # Signed download URLs (tusd_py/http/downloads.py), for players that cannot send a bearer token.
    download_signing_key: str | None = None  # default: derived from --jwt-secret (HKDF), else random per start
    download_url_ttl: float = 900.0  # seconds a signed download URL stays valid

    def _check_listening(self) -> None:
        if (self.tls_certificate is None) != (self.tls_key is None):
            raise ValueError("tls_certificate: --tls-certificate and --tls-key go together")
        if self.unix_socket is not None and self.processes > 1:
            raise ValueError("unix_socket: one process serves a UNIX socket (--processes shares a TCP port)")
        if not self.metrics_path.startswith("/") or self.metrics_path == self.base_path.rstrip("/"):
            raise ValueError("metrics_path: must be a path starting with / outside --base-path")
        if self.cors_max_age < 0:
            raise ValueError("cors_max_age: must not be negative")
        if self.cors_allow_origin is not None:
            try:
                re.compile(self.cors_allow_origin)
            except re.error as exc:
                raise ValueError(f"cors_allow_origin: not a regular expression ({exc})") from None

    @property
    def state_db_path(self) -> str:
        return self.state_db or os.path.join(self.storage_dir, "state.sqlite3")

    @property
    def auth_enabled(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key or self.jwks or self.jwks_url)

    def __repr__(self) -> str:  # configs reach logs and tracebacks; secrets must not
        hidden = {
            "jwt_secret",
            "hooks_secret",
            "download_signing_key",
            "database_url",
            "redis_url",
        }  # URLs hold passwords
        fields = ", ".join(
            f"{name}={'***' if name in hidden and getattr(self, name) else getattr(self, name)!r}"
            for name in self.__struct_fields__
        )
        return f"Config({fields})"

    def __post_init__(self) -> None:
        if not self.base_path.startswith("/"):
            self.base_path = "/" + self.base_path
        if not self.base_path.endswith("/"):
            self.base_path += "/"
        # Errors say "field: reason"; tusd_py.config.loading turns the field into its flag and variable.
        if self.max_size == 0:
            self.max_size = None  # 0: no limit, as in tusd
        for name in ("max_size", "max_append_size", "min_append_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: must be a positive number of bytes")
        if self.min_append_size and self.max_append_size and self.min_append_size > self.max_append_size:
            raise ValueError("min_append_size: must not be above --max-append-size")
        for name in ("header_timeout", "keepalive_timeout", "max_connections"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative")
        if not 1 <= self.processes <= 256:
            raise ValueError("processes: must be between 1 and 256")
        if not 0 < self.port < 65536:
            raise ValueError("port: must be between 1 and 65535")
        if not 0 <= self.metrics_port < 65536 or (self.metrics_port and self.metrics_port == self.port):
            raise ValueError("metrics_port: must be between 1 and 65535 and differ from --port (0: the main port)")
        if self.download_signing_key is not None and len(self.download_signing_key) < 32:
            raise ValueError("download_signing_key: must be at least 32 characters (it is an HMAC-SHA256 key)")
        if not 0 < self.download_url_ttl <= 7 * 24 * 3600:
            raise ValueError("download_url_ttl: must be between 0 and a week (seconds)")
        if self.job_lease <= 0:
            raise ValueError("job_lease: must be a positive number of seconds")
        if not self.redis_lease >= 1:
            raise ValueError("redis_lease: must be at least 1 second (it is renewed every third of it)")
        if self.hooks_retention <= 0:
            raise ValueError("hooks_retention: must be a positive number of seconds")
        if self.hooks_backoff_max < 1:
            raise ValueError("hooks_backoff_max: must be at least 1 second")
        if self.progress_hooks_interval < 0:
            raise ValueError("progress_hooks_interval: must not be negative")
        if self.jwks_url is not None and not self.jwks_url.startswith("https://"):
            raise ValueError("jwks_url: must be an https:// URL (keys fetched in the clear could be swapped)")
        if self.jwks_min_refresh < 0:
            raise ValueError("jwks_min_refresh: must not be negative")
        self._check_listening()
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("s3_bucket: must be set with --storage s3")
