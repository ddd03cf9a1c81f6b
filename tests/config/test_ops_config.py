"""The new flags: parsed from the command line and the environment, refused when unsafe or contradictory."""

from __future__ import annotations

import pytest

from tusd_py.config.values import Config
from tusd_py.server.cli import load_config, parse_args


def test_flags_and_environment() -> None:
    args = parse_args(["serve", "--metrics-port", "9100", "--download-url-ttl", "60"])
    config = load_config(args, {"TUSD_PY_NO_METRICS": "1", "TUSD_PY_DOWNLOAD_SIGNING_KEY": "k" * 32})
    assert (config.metrics_port, config.download_url_ttl, config.no_metrics) == (9100, 60.0, True)
    assert config.download_signing_key == "k" * 32
    assert "k" * 32 not in repr(config), "the signing key must not reach logs"


@pytest.mark.parametrize(
    "changes",
    [{"metrics_port": 1080}, {"metrics_port": 70000}, {"download_signing_key": "short"}, {"download_url_ttl": 0}],
)
def test_unsafe_values_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Config(**changes)  # type: ignore[arg-type]
