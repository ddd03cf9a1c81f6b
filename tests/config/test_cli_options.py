"""The flag table: every flag's environment twin, secret files, help, --version (tests generated from OPTIONS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tusd_py import __version__
from tusd_py.config.loading import ConfigError, expected, load_config, unknown_env
from tusd_py.config.options import COMMAND_GROUPS, OPTIONS, Option
from tusd_py.config.values import Config
from tusd_py.server.cli import COMMANDS, main, parse_args

# storage=s3 needs a bucket, and a TLS certificate its key; every case runs with them so the field
# under test is the only change.
BASE_ENV = {"TUSD_PY_S3_BUCKET": "bucket", "TUSD_PY_TLS_CERTIFICATE": "/cert", "TUSD_PY_TLS_KEY": "/key"}


# A command line without flags, parsed once: building the parser is the costly part (it reads the
# Config type hints per option) and load_config only reads the namespace.
NO_FLAGS = parse_args([])


def _sample(option: Option) -> tuple[str, Any]:
    """A valid text for the option, different from its default, and the value Config must hold."""
    if option.switch:
        return "1", True
    accepts = expected(option.field)
    if accepts.startswith("one of"):
        choice = next(c for c in accepts[len("one of ") :].split(", ") if c != getattr(Config(), option.field))
        return choice, choice
    if accepts == "a whole number":
        return "7", 7
    if accepts == "a number":
        return "7.5", 7.5
    if accepts == "a comma-separated list":
        return "a, b", ["a", "b"]
    if option.field == "jwks_url":  # https only
        return "https://idp.example/jwks", "https://idp.example/jwks"
    if option.field == "download_signing_key":  # an HMAC key: Config refuses short ones
        return "k" * 32, "k" * 32
    return "/sample", "/sample/" if option.field == "base_path" else "/sample"


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.flag)
def test_every_flag_has_an_environment_twin_named_after_it(option: Option) -> None:
    assert option.env == "TUSD_PY_" + option.flag[2:].upper().replace("-", "_")
    text, value = _sample(option)
    from_env = load_config(NO_FLAGS, {**BASE_ENV, option.env: text})
    assert getattr(from_env, option.field) == value
    flag_args = [option.flag] if option.switch else [option.flag, text]
    from_flag = load_config(parse_args(flag_args), BASE_ENV)
    assert getattr(from_flag, option.field) == value
    assert getattr(load_config(NO_FLAGS, BASE_ENV), option.field) == getattr(
        Config(s3_bucket="bucket", tls_certificate="/cert", tls_key="/key"), option.field
    )


def test_flag_beats_variable() -> None:
    config = load_config(parse_args(["--port", "2000"]), {"TUSD_PY_PORT": "3000"})
    assert config.port == 2000


def test_disable_extensions_reads_its_own_name() -> None:
    config = load_config(NO_FLAGS, {"TUSD_PY_DISABLE_EXTENSIONS": "termination"})
    assert config.disabled_extensions == ["termination"]


def test_unknown_variables_are_reported_with_the_closest_name() -> None:
    warnings = unknown_env({"TUSD_PY_DISABLED_EXTENSIONS": "x", "TUSD_PY_PORT": "1", "HOME": "/root"})
    assert warnings == [
        "TUSD_PY_DISABLED_EXTENSIONS is not a tusd-py setting and is ignored (did you mean TUSD_PY_DISABLE_EXTENSIONS?)"
    ]
    assert unknown_env({"TUSD_PY_JWT_SECRET_FILE": "/s", "TUSD_PY_HOOKS_SECRET_FILE": "/h"}) == []


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.secret], ids=lambda option: option.flag)
def test_secrets_come_from_files_by_flag_or_variable(option: Option, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    value = "s3cr3t-value-long-enough-for-an-hmac-key"  # --download-signing-key needs 32 characters
    secret.write_text(value + "\n")
    by_flag = load_config(parse_args([option.file_flag, str(secret)]), {})
    by_env = load_config(NO_FLAGS, {option.file_env: str(secret)})
    assert getattr(by_flag, option.field) == getattr(by_env, option.field) == value
    with pytest.raises(ConfigError, match=f"give {option.flag} or {option.file_flag}, not both"):
        load_config(parse_args([option.flag, "x", option.file_flag, str(secret)]), {})
    with pytest.raises(ConfigError, match=f"set {option.env} or {option.file_env}, not both"):
        load_config(NO_FLAGS, {option.env: "x", option.file_env: str(secret)})
    missing = tmp_path / "missing"
    with pytest.raises(ConfigError) as refused:
        load_config(parse_args([option.file_flag, str(missing)]), {})
    assert (
        str(refused.value)
        == f"{option.file_flag} (env {option.file_env}): cannot read {missing}: No such file or directory"
    )
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(NO_FLAGS, {option.file_env: str(tmp_path / "empty")})


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--port", "x"], {}, "--port (env TUSD_PY_PORT): expected a whole number, got 'x'"),
        ([], {"TUSD_PY_PORT": "70000"}, "--port (env TUSD_PY_PORT): must be between 1 and 65535, got '70000'"),
        (["--storage", "foo"], {}, "--storage (env TUSD_PY_STORAGE): expected one of filesystem, s3, got 'foo'"),
        (["--max-size", "-5"], {}, "--max-size (env TUSD_PY_MAX_SIZE): must be a positive number of bytes, got '-5'"),
        (["--storage", "s3"], {}, "--s3-bucket (env TUSD_PY_S3_BUCKET): must be set with --storage s3"),
        (
            [],
            {"TUSD_PY_HEADER_TIMEOUT": "-1"},
            "--header-timeout (env TUSD_PY_HEADER_TIMEOUT): must not be negative, got '-1'",
        ),
        (
            ["--max-connections", "-3"],
            {},
            "--max-connections (env TUSD_PY_MAX_CONNECTIONS): must not be negative, got '-3'",
        ),
        (["--lock-timeout", "soon"], {}, "--lock-timeout (env TUSD_PY_LOCK_TIMEOUT): expected a number, got 'soon'"),
        (
            ["--log-level", "loud"],
            {},
            "--log-level (env TUSD_PY_LOG_LEVEL): expected one of debug, info, warning, error, got 'loud'",
        ),
        (
            [],
            {"TUSD_PY_FSYNC": "maybe"},
            "--fsync (env TUSD_PY_FSYNC): expected one of 1, true, yes, on, 0, false, no, off, got 'maybe'",
        ),
    ],
)
def test_config_errors_name_the_flag_its_variable_and_the_valid_values(
    argv: list[str],
    env: dict[str, str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(parse_args(argv), env)
    assert str(refused.value) == message
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    assert capsys.readouterr().err == f"tusd-py: invalid configuration: {message}\n"


def test_switch_variables_read_false_words() -> None:
    assert load_config(NO_FLAGS, {"TUSD_PY_BEHIND_PROXY": "off"}).behind_proxy is False
    assert load_config(NO_FLAGS, {"TUSD_PY_BEHIND_PROXY": "Yes"}).behind_proxy is True


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"tusd-py {__version__}\n"
    assert __version__[0].isdigit()


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_commands_not_flags(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help([], capsys)
    assert all(command in text for command in COMMANDS)
    assert "--port" not in text and len(text.splitlines()) < 30


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_shows_its_own_flags_by_topic_with_defaults(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help([command], capsys)
    for option in OPTIONS:
        if option.group in COMMAND_GROUPS[command]:
            assert option.flag in text and option.env in text
        else:
            assert f"{option.flag} " not in text
    for group in COMMAND_GROUPS[command]:
        assert f"\n{group}:\n" in text
    if command == "serve":
        assert "default: 1080" in text and "one of filesystem, s3" in text


def test_serve_is_the_default_command() -> None:
    assert parse_args(["--port", "8080"]).command == "serve"
    assert parse_args([]).command == "serve"
    assert parse_args(["sweep", "--storage-dir", "x"]).storage_dir == "x"


def test_the_configuration_page_lists_every_flag() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    flags = [o.flag for o in OPTIONS] + [o.file_flag for o in OPTIONS if o.secret]
    assert [flag for flag in flags if f"`{flag}`" not in page] == []
