"""The flag table: every setting's flag, its environment twin, its topic and which commands take it.

One rule names every environment variable: ``TUSD_PY_`` + the flag without its dashes, upper-case,
``-`` as ``_`` (``--max-size`` is ``TUSD_PY_MAX_SIZE``). A secret can also come from a file, as
container platforms pass them: ``--jwt-secret-file`` / ``TUSD_PY_JWT_SECRET_FILE``.
"""

from __future__ import annotations

from dataclasses import dataclass

ENV_PREFIX = "TUSD_PY_"

LISTENING = "listening"
STORAGE = "storage"
S3 = "S3 storage"
AUTH = "auth (JWT)"
QUOTAS = "quotas"
HOOKS = "hooks"
PROCESSING = "processing"
OPERATIONS = "operations"
LOGGING = "logging"

# The topics each command reads, in --help order.
COMMAND_GROUPS: dict[str, tuple[str, ...]] = {
    "serve": (LISTENING, STORAGE, S3, AUTH, QUOTAS, HOOKS, PROCESSING, OPERATIONS, LOGGING),
    # Both delete uploads with the server's parts (tusd_py/server/runtime.py): post-terminate hooks
    # fire as they would in the server, and the state store (--state-db, --database-url) is told.
    "sweep": (STORAGE, S3, HOOKS, PROCESSING, LOGGING),
    "cleanup": (STORAGE, S3, HOOKS, PROCESSING, LOGGING),
    "dev-token": (AUTH,),
}


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


@dataclass(frozen=True)
class Option:
    flag: str
    field: str  # the Config field it sets; its type converts flag and variable alike
    help: str
    group: str
    switch: bool = False  # takes no value on the command line; the variable reads 1/true/yes/on
    secret: bool = False  # also read from a file: --<flag>-file, TUSD_PY_<FLAG>_FILE

    @property
    def env(self) -> str:
        return env_name(self.flag)

    @property
    def file_flag(self) -> str:
        return self.flag + "-file"

    @property
    def file_env(self) -> str:
        return env_name(self.file_flag)

    @property
    def file_field(self) -> str:
        return self.field + "_file"


def _o(flag: str, field: str, help_text: str, group: str, **kind: bool) -> Option:
    return Option(flag, field, help_text, group, **kind)


OPTIONS: tuple[Option, ...] = (
    _o("--host", "host", "address to listen on", LISTENING),
    _o("--port", "port", "port to listen on", LISTENING),
    _o("--base-path", "base_path", "URL path of the upload collection", LISTENING),
    _o("--behind-proxy", "behind_proxy", "trust X-Forwarded-*/Forwarded headers for URLs", LISTENING, switch=True),
    _o("--unix-socket", "unix_socket", "listen on this UNIX socket instead of --host/--port", LISTENING),
    _o("--tls-certificate", "tls_certificate", "PEM certificate chain file: serve HTTPS (needs --tls-key)", LISTENING),
    _o("--tls-key", "tls_key", "PEM private key file of --tls-certificate", LISTENING),
    _o("--tls-mode", "tls_mode", "TLS versions and ciphers, as tusd's -tls-mode", LISTENING),
    _o("--cors-origins", "cors_origins", "comma-separated allowed browser origins, * for any", LISTENING),
    _o(
        "--cors-allow-origin",
        "cors_allow_origin",
        "regular expression of allowed browser origins, searched as tusd does (default: --cors-origins)",
        LISTENING,
    ),
    _o(
        "--cors-allow-credentials",
        "cors_allow_credentials",
        "send Access-Control-Allow-Credentials",
        LISTENING,
        switch=True,
    ),
    _o("--cors-allow-methods", "cors_allow_methods", "methods allowed besides tus's", LISTENING),
    _o("--cors-allow-headers", "cors_allow_headers", "request headers allowed besides tus's", LISTENING),
    _o(
        "--cors-expose-headers",
        "cors_expose_headers",
        "response headers exposed besides tus's",
        LISTENING,
    ),
    _o("--cors-max-age", "cors_max_age", "seconds a browser may cache a preflight answer", LISTENING),
    _o("--disable-cors", "disable_cors", "send no CORS headers and answer no preflights", LISTENING, switch=True),
    _o(
        "--max-connections",
        "max_connections",
        "connections served at once, more get 503 (0: three quarters of the open-file limit)",
        LISTENING,
    ),
    _o(
        "--processes",
        "processes",
        "worker processes serving --port, supervised; auto: one per core available",
        LISTENING,
    ),
    _o("--header-timeout", "header_timeout", "seconds a client has to send its request headers (0: none)", LISTENING),
    _o("--keepalive-timeout", "keepalive_timeout", "seconds an idle keep-alive connection stays open", LISTENING),
    _o("--body-idle-timeout", "body_idle_timeout", "seconds of silence after which a PATCH body is cut", LISTENING),
    _o("--storage", "storage", "storage backend", STORAGE),
    _o("--storage-dir", "storage_dir", "directory of the filesystem backend (and of the default --state-db)", STORAGE),
    _o("--fsync", "fsync", "filesystem: flush every PATCH to disk before answering", STORAGE, switch=True),
    _o("--max-size", "max_size", "largest upload accepted, in bytes (Tus-Max-Size)", STORAGE),
    _o("--max-append-size", "max_append_size", "largest body of one resumable-upload draft request", STORAGE),
    _o("--min-append-size", "min_append_size", "smallest body of a draft request that does not complete", STORAGE),
    _o(
        "--disable-extensions",
        "disabled_extensions",
        "comma-separated extensions to turn off (tus ones, resumable-upload-draft)",
        STORAGE,
    ),
    _o(
        "--disable-download",
        "disable_download",
        "refuse to serve uploads' bytes (GET)",
        STORAGE,
        switch=True,
    ),
    _o(
        "--expire-after",
        "expire_after",
        "seconds without activity before an unfinished upload expires (0: never)",
        STORAGE,
    ),
    _o("--lock-timeout", "lock_timeout", "seconds a request waits for another one on the same upload", STORAGE),
    _o(
        "--redis-url",
        "redis_url",
        "Redis for upload locks shared by several instances (default: locks in this process)",
        STORAGE,
        secret=True,
    ),
    _o("--redis-lease", "redis_lease", "seconds a Redis lock outlives a holder that stopped renewing it", STORAGE),
    _o("--s3-bucket", "s3_bucket", "S3 bucket (it must exist)", S3),
    _o("--s3-prefix", "s3_prefix", "key prefix of every object this server writes", S3),
    _o("--s3-endpoint", "s3_endpoint", "S3-compatible endpoint URL (default: AWS)", S3),
    _o("--s3-region", "s3_region", "S3 region (default: from the AWS configuration)", S3),
    _o(
        "--s3-path-style",
        "s3_path_style",
        "path-style addressing (most self-hosted S3 servers need it)",
        S3,
        switch=True,
    ),
    _o("--s3-part-size", "s3_part_size", "preferred multipart part size in bytes (raised to fit 10,000 parts)", S3),
    _o("--s3-part-concurrency", "s3_part_concurrency", "S3 parts in memory and uploading at once, whole server", S3),
    _o(
        "--api-without-auth",
        "api_without_auth",
        "serve the Recordings API with auth off on a non-loopback address (every caller sees every upload)",
        AUTH,
        switch=True,
    ),
    _o("--jwt-secret", "jwt_secret", "shared secret for HS256/384/512 tokens (turns auth on)", AUTH, secret=True),
    _o("--jwt-public-key", "jwt_public_key", "PEM public key file for RS256/ES256/EdDSA tokens (turns auth on)", AUTH),
    _o("--jwks", "jwks", "JWKS file; the token's kid picks the key (turns auth on)", AUTH),
    _o("--jwks-url", "jwks_url", "https URL of a remote JWKS, cached and refreshed (turns auth on)", AUTH),
    _o("--jwks-ca-file", "jwks_ca_file", "PEM CA bundle trusted for --jwks-url (default: the system's)", AUTH),
    _o("--jwks-min-refresh", "jwks_min_refresh", "seconds between JWKS fetches for unknown kids", AUTH),
    _o(
        "--jwt-algorithms",
        "jwt_algorithms",
        "comma-separated allowed algorithms (default: HS256 with a secret, RS256 with a key or JWKS)",
        AUTH,
    ),
    _o("--jwt-issuer", "jwt_issuer", "required iss claim", AUTH),
    _o("--jwt-audience", "jwt_audience", "required aud claim", AUTH),
    _o("--jwt-user-claim", "jwt_user_claim", "claim holding the user id", AUTH),
    _o("--jwt-leeway", "jwt_leeway", "seconds of clock skew allowed for exp/nbf/iat", AUTH),
    _o(
        "--quota-bytes",
        "quota_bytes",
        "bytes each user may store, unfinished uploads' lengths included (0: none)",
        QUOTAS,
    ),
    _o("--quota-unfinished", "quota_unfinished", "unfinished uploads each user may have (0: no limit)", QUOTAS),
    _o(
        "--quota-creations-per-minute",
        "quota_creations_per_minute",
        "uploads each user may create per minute, per process, empty ones included (0: no limit)",
        QUOTAS,
    ),
    _o("--hooks-url", "hooks_url", "URL receiving hook events as signed JSON POSTs", HOOKS),
    _o(
        "--hooks-secret",
        "hooks_secret",
        "webhook signing secret (whsec_... for Standard Webhooks; also signs Tusd-Py-Signature)",
        HOOKS,
        secret=True,
    ),
    _o("--hooks-events", "hooks_events", "comma-separated hook types sent to the webhook (default: all)", HOOKS),
    _o("--hooks-timeout", "hooks_timeout", "seconds per webhook attempt", HOOKS),
    _o("--hooks-retries", "hooks_retries", "deprecated: post-* webhooks now retry until --hooks-retention", HOOKS),
    _o("--hooks-retention", "hooks_retention", "seconds post-* webhook events are retried (durable)", HOOKS),
    _o("--hooks-backoff-max", "hooks_backoff_max", "longest wait between post-* delivery attempts", HOOKS),
    _o(
        "--hooks-forward-headers",
        "hooks_forward_headers",
        "comma-separated request headers copied into hook events",
        HOOKS,
    ),
    _o(
        "--hooks-format",
        "hooks_format",
        "webhook wire format: tusd-py, or tusd (tusd v2's hook requests and replies)",
        HOOKS,
    ),
    _o("--progress-hooks-interval", "progress_hooks_interval", "seconds between post-receive events", HOOKS),
    _o("--hooks-fail-open", "hooks_fail_open", "let requests through when a pre-* webhook is down", HOOKS, switch=True),
    _o(
        "--state-db",
        "state_db",
        "SQLite file for recordings and jobs (default: state.sqlite3 in --storage-dir)",
        PROCESSING,
    ),
    _o(
        "--database-url",
        "database_url",
        "postgresql:// URL: recordings, jobs and quotas shared by several processes or instances",
        PROCESSING,
        secret=True,
    ),
    _o(
        "--job-lease",
        "job_lease",
        "seconds a claimed job stays a process's unless renewed (PostgreSQL, --processes)",
        PROCESSING,
    ),
    _o("--workers", "workers", "processing jobs run at once (0: record states but process nothing)", PROCESSING),
    _o("--job-attempts", "job_attempts", "attempts per processing job before it is marked failed", PROCESSING),
    _o("--job-retry-delay", "job_retry_delay", "seconds before the first retry, doubling each time", PROCESSING),
    _o(
        "--compression-threshold",
        "compression_threshold",
        "bytes above which lossless/PCM audio gets advice",
        PROCESSING,
    ),
    _o("--voice-bitrate", "voice_bitrate", "bit/s of the Opus target for size estimates", PROCESSING),
    _o(
        "--cleanup-failed-days",
        "cleanup_failed_days",
        "delete failed recordings older than this (days; 0: never)",
        PROCESSING,
    ),
    _o("--shutdown-timeout", "shutdown_timeout", "seconds in-flight requests get on SIGTERM", OPERATIONS),
    _o("--sweep-interval", "sweep_interval", "seconds between background expiration sweeps (0: none)", OPERATIONS),
    _o("--cleanup-interval", "cleanup_interval", "seconds between background cleanups (0: none)", OPERATIONS),
    _o("--demo", "demo", "serve the offline-first recorder page at /demo/", OPERATIONS, switch=True),
    _o("--no-metrics", "no_metrics", "do not serve Prometheus metrics at /metrics", OPERATIONS, switch=True),
    _o("--metrics-port", "metrics_port", "serve /metrics on this port only, not on --port (0: on --port)", OPERATIONS),
    _o("--metrics-path", "metrics_path", "URL path of the Prometheus metrics", OPERATIONS),
    _o("--readyz-timeout", "readyz_timeout", "seconds each /readyz check may take", OPERATIONS),
    _o(
        "--download-signing-key",
        "download_signing_key",
        "HMAC key of signed download URLs (default: derived from --jwt-secret); required with "
        "--redis-url (several instances) and no --jwt-secret",
        OPERATIONS,
        secret=True,
    ),
    _o("--download-url-ttl", "download_url_ttl", "seconds a signed download URL stays valid", OPERATIONS),
    _o("--log-format", "log_format", "log format (auto: readable on a terminal, JSON otherwise)", LOGGING),
    _o("--log-level", "log_level", "lowest level logged", LOGGING),
)

BY_FIELD = {option.field: option for option in OPTIONS}


def known_env_names() -> set[str]:
    names = {option.env for option in OPTIONS}
    names.update(option.file_env for option in OPTIONS if option.secret)
    return names


# tusd v2.10's spellings of flags that mean the same here (cmd/tusd/cli/flags.go), accepted beside
# ours with one dash or two (docs/migrating-from-tusd.md lists every tusd flag). A tusd flag spelled
# like ours (--host, --max-size, ...) needs no entry. tusd's durations ("10s", "1m30s") are read by
# every seconds flag; tusd_py/config/tusd_flags.py rewrites a tusd command line into ours.
TUSD_ALIASES: dict[str, str] = {
    "--unix-sock": "--unix-socket",
    "--upload-dir": "--storage-dir",
    "--s3-object-prefix": "--s3-prefix",  # tusd puts a "/" after a prefix without one; so does the rewrite
    "--hooks-http": "--hooks-url",  # and, unless --hooks-format is given, tusd's hook format
    "--hooks-http-forward-headers": "--hooks-forward-headers",
    "--hooks-http-timeout": "--hooks-timeout",
    "--hooks-http-retry": "--hooks-retries",
    "--hooks-enabled-events": "--hooks-events",
    "--network-timeout": "--body-idle-timeout",
    "--acquire-lock-timeout": "--lock-timeout",
}
# tusd switches that say the opposite of ours: -expose-metrics=false is --no-metrics.
TUSD_INVERTED: dict[str, str] = {"--expose-metrics": "--no-metrics"}
# tusd switches that turn off one of our extensions: -disable-termination is --disable-extensions termination.
TUSD_DISABLES: dict[str, str] = {
    "--disable-termination": "termination",
    "--disable-concatenation": "concatenation,concatenation-unfinished",
}
# tusd switches accepted and ignored: what they ask for is what tusd-py does anyway (or, for the
# greeting and the verbosity, changes only what tusd prints), so a tusd command line need not change.
TUSD_IGNORED: dict[str, str] = {
    "--enable-experimental-protocol": "the IETF resumable-upload draft is on by default",
    "--s3-disable-content-hashes": "S3 payloads are sent unsigned already",
    "--show-startup-logs": "start-up is logged at info",
    "--verbose": "every request is logged at info",
    "--show-greeting": "there is no greeting page",
}
