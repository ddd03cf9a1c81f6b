import pytest

from tusd_py.config.loading import ConfigError
from tusd_py.config.values import Config
from tusd_py.server.cli import load_config, parse_args


def test_config_precedence_flag_over_env_over_default() -> None:
    args = parse_args(["--port", "2000"])
    config = load_config(args, {"TUSD_PY_PORT": "3000", "TUSD_PY_MAX_SIZE": "1024", "TUSD_PY_CORS_ORIGINS": "a, b"})
    assert config.port == 2000
    assert config.max_size == 1024
    assert config.cors_origins == ["a", "b"]
    assert load_config(parse_args([]), {}).port == 1080


def test_config_normalises_base_path_and_reads_booleans() -> None:
    config = load_config(parse_args(["--base-path", "uploads"]), {"TUSD_PY_BEHIND_PROXY": "true"})
    assert config.base_path == "/uploads/"
    assert config.behind_proxy is True


def test_connection_flags_and_their_env_twins() -> None:
    defaults = load_config(parse_args([]), {})
    assert (defaults.header_timeout, defaults.keepalive_timeout, defaults.max_connections) == (20.0, 75.0, 0)
    args = parse_args(["--header-timeout", "5", "--max-connections", "300"])
    config = load_config(args, {"TUSD_PY_KEEPALIVE_TIMEOUT": "30", "TUSD_PY_HEADER_TIMEOUT": "9"})
    assert (config.header_timeout, config.keepalive_timeout, config.max_connections) == (5.0, 30.0, 300)


@pytest.mark.parametrize(
    "env",
    [
        {"TUSD_PY_PORT": "x"},
        {"TUSD_PY_PORT": "70000"},
        {"TUSD_PY_MAX_SIZE": "-5"},
        {"TUSD_PY_HEADER_TIMEOUT": "-1"},
        {"TUSD_PY_MAX_CONNECTIONS": "-3"},
    ],
)
def test_bad_config_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_config(parse_args([]), env)


def test_cli_refuses_bad_config_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from tusd_py.server.cli import main

    assert main(["--port", "notaport"]) == 2
    assert "invalid configuration" in capsys.readouterr().err
    assert isinstance(Config(), Config)
