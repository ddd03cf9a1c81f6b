"""docs/migrating-from-tusd.md lists every tusd v2.10 flag, and says truly which ones we accept.

The list is tusd's (cmd/tusd/cli/flags.go at v2.10.0), written down here. A flag the page maps to
one of ours must be taken by our command line in tusd's own syntax; a flag it says we have none for
must be refused, not silently ignored (a tusd command line relying on it must not start as if it
had been honoured).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tusd_py.server.cli import parse_args

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-tusd.md"

TUSD_SWITCHES = {
    "behind-proxy", "enable-h2c", "enable-experimental-protocol", "disable-download", "disable-termination",
    "disable-concatenation", "disable-cors", "cors-allow-credentials", "s3-disable-content-hashes",
    "s3-disable-ssl", "s3-transfer-acceleration", "s3-log-api-calls", "hooks-http-skip-verify",
    "hooks-grpc-secure", "expose-metrics", "expose-pprof", "show-greeting", "version", "verbose",
    "show-startup-logs",
}  # fmt: skip
TUSD_VALUED = {
    "host", "port", "unix-sock", "base-path", "tls-certificate", "tls-key", "tls-mode", "max-size",
    "cors-allow-origin", "cors-allow-methods", "cors-allow-headers", "cors-max-age", "cors-expose-headers",
    "upload-dir", "filelock-holder-poll-interval", "filelock-acquirer-poll-interval", "dir-perms", "file-perms",
    "s3-bucket", "s3-object-prefix", "s3-endpoint", "s3-part-size", "s3-min-part-size", "s3-max-buffered-parts",
    "s3-concurrent-part-uploads", "gcs-bucket", "gcs-object-prefix", "gcs-endpoint", "azure-storage",
    "azure-container-access-type", "azure-blob-access-tier", "azure-object-prefix", "azure-endpoint",
    "hooks-enabled-events", "progress-hooks-interval", "hooks-dir", "hooks-http", "hooks-http-forward-headers",
    "hooks-http-retry", "hooks-http-backoff", "hooks-http-timeout", "hooks-http-size-limit", "hooks-grpc",
    "hooks-grpc-retry", "hooks-grpc-backoff", "hooks-grpc-server-tls-certificate",
    "hooks-grpc-client-tls-certificate", "hooks-grpc-client-tls-key", "hooks-grpc-forward-headers",
    "hooks-plugin", "metrics-path", "pprof-path", "pprof-block-profile-rate", "pprof-mutex-profile-rate",
    "log-format", "network-timeout", "shutdown-timeout", "acquire-lock-timeout", "request-completion-timeout",
}  # fmt: skip
TUSD_FLAGS = TUSD_SWITCHES | TUSD_VALUED


def documented() -> dict[str, str]:
    """tusd flag -> what the page's tusd-py column says for it."""
    rows = {}
    for line in DOC.read_text().splitlines():
        if line.startswith("| `-"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            for flag in re.findall(r"`-([a-z0-9-]+)`", cells[0]):
                rows[flag] = cells[1]
    return rows


def test_tusds_list_is_complete() -> None:
    assert len(TUSD_FLAGS) == 79  # flags.go at v2.10.0 registers 79 flags
    assert set(documented()) == TUSD_FLAGS


@pytest.mark.parametrize("flag", sorted(TUSD_FLAGS))
def test_the_page_says_truly_whether_a_flag_is_taken(flag: str) -> None:
    ours = documented()[flag]
    argv = [f"-{flag}"] if flag in TUSD_SWITCHES else [f"-{flag}=1"]
    if ours == "none":
        with pytest.raises(SystemExit) as refused:
            parse_args(argv)
        assert refused.value.code == 2, f"-{flag} is documented as unsupported but was taken"
    elif flag == "version":
        with pytest.raises(SystemExit) as printed:
            parse_args(argv)
        assert printed.value.code == 0
    else:
        parse_args(argv)  # taken (its value is checked by load_config, as for our own spellings)
