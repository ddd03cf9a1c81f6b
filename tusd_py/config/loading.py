"""Config from flags, TUSD_PY_* variables and secret files; errors worded for the person who typed them.

Precedence: flag > environment variable > default. A secret given both as a value and as a file is
refused rather than one silently winning.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import msgspec

from tusd_py.config.options import BY_FIELD, ENV_PREFIX, OPTIONS, Option, known_env_names
from tusd_py.config.values import Config

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the flag and its variable."""


def load_config(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Config:
    """Flag > environment variable > default; values converted and validated by msgspec."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for option in OPTIONS:
        value = _given(option, args, environ)
        if value is not None:
            raw[option.field] = _parse(option, value)
    try:
        return msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(explain(exc, raw)) from None


def unknown_env(environ: Mapping[str, str]) -> list[str]:
    """A warning per TUSD_PY_* variable no flag reads: a typo there is otherwise silently ignored."""
    known = known_env_names()
    warnings = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"{name} is not a tusd-py setting and is ignored{hint}")
    return warnings


def _label(option: Option) -> str:
    return f"{option.flag} (env {option.env})"


def _given(option: Option, args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    """The option's value from the command line, else from the environment; None when unset."""
    from_file = getattr(args, option.file_field, None) if option.secret else None
    value = getattr(args, option.field, None)
    if value is not None and from_file is not None:
        raise ConfigError(f"give {option.flag} or {option.file_flag}, not both")
    if value is None and from_file is None:
        value = environ.get(option.env) or None
        from_file = environ.get(option.file_env) or None if option.secret else None
        if value is not None and from_file is not None:
            raise ConfigError(f"set {option.env} or {option.file_env}, not both")
    if from_file is not None:
        return _read_secret(option, from_file)
    return value


def _read_secret(option: Option, path: str) -> str:
    where = f"{option.file_flag} (env {option.file_env})"
    try:
        # Files written by `echo` or editors end in a newline that is no part of the secret.
        secret = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{where}: cannot read {path}: {reason}") from None
    if not secret:
        raise ConfigError(f"{where}: {path} is empty")
    return secret


def _parse(option: Option, value: Any) -> Any:
    if not isinstance(value, str):
        return value  # a switch given on the command line
    if option.switch:
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ConfigError(f"{_label(option)}: expected one of {', '.join(_TRUE + _FALSE)}, got {value!r}")
    if option.field == "processes" and value.strip().lower() == "auto":
        from tusd_py.config.cores import available_cores

        return available_cores()
    if expected(option.field) == "a comma-separated list":  # the Config field's type says so
        return [item.strip() for item in value.split(",") if item.strip()]
    if expected(option.field) == "a number" and option.field not in NOT_SECONDS and _GO_DURATION.fullmatch(value):
        return go_duration(value)
    return value


# Number flags that are not seconds: a Go duration means nothing for them.
NOT_SECONDS = frozenset({"cleanup_failed_days"})
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)")
_GO_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|ms|s|m|h))+")


def go_duration(text: str) -> float:
    """Seconds in a Go duration ("10s", "1m30s", "500ms"), as tusd's timing flags take them."""
    return sum(float(number) * _GO_UNITS[unit] for number, unit in _GO_PART.findall(text))


_AT_FIELD = re.compile(r"at `\$\.([a-z0-9_]+)")
_FIELD_REASON = re.compile(r"^([a-z0-9_]+): (.+)$", re.DOTALL)


def explain(exc: msgspec.ValidationError, raw: Mapping[str, Any]) -> str:
    """msgspec's message (``Expected `int`, got `str` - at `$.port```) in the words of the flag table."""
    message = str(exc)
    at = _AT_FIELD.search(message)
    if at and at.group(1) in BY_FIELD:
        option = BY_FIELD[at.group(1)]
        shown = "" if option.secret else f", got {raw.get(option.field)!r}"
        return f"{_label(option)}: expected {expected(option.field)}{shown}"
    stated = _FIELD_REASON.match(message)  # Config.__post_init__ says "field: reason"
    if stated and stated.group(1) in BY_FIELD:
        option = BY_FIELD[stated.group(1)]
        shown = "" if option.secret or option.field not in raw else f", got {raw[option.field]!r}"
        return f"{_label(option)}: {stated.group(2)}{shown}"
    return message


def expected(field: str) -> str:
    """What a field accepts, from its type in Config: the valid values of a choice."""
    hint = get_type_hints(Config)[field]
    optional = get_origin(hint) in (Union, UnionType)
    kinds = [kind for kind in get_args(hint) if kind is not type(None)] if optional else []
    kind = kinds[0] if len(kinds) == 1 else hint
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(kind))
    if kind is int:
        return "a whole number"
    if kind is float:
        return "a number"
    if get_origin(kind) is list:
        return "a comma-separated list"
    return "text"


def describe_default(field: str) -> str:
    """The default shown in --help, as a user would type it."""
    value = getattr(Config(), field)
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(value) or "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
