"""A tusd command line, read as ours: tusd v2.10's flag spellings and syntax rewritten before parsing. Pure.

Go's ``flag`` package takes ``-name``, ``--name``, ``-name=value`` and ``-name value``, and a switch
as ``-name`` or ``-name=true|false``. argparse takes ``--name`` and ``--name=value``, and a switch
only bare. :func:`rewrite` bridges the two for every flag of the table (tusd_py/config/options.py) and
renames tusd's own spellings (``TUSD_ALIASES``, ``TUSD_INVERTED``, ``TUSD_DISABLES``; ``TUSD_IGNORED``
are dropped). Seen a tusd
spelling (or one dash), the command line is tusd's, and tusd's behaviours follow: ``-hooks-http``
receivers get tusd's hook format, ``-s3-bucket`` chooses S3 storage, and an ``-s3-endpoint`` is
addressed path-style.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tusd_py.config.options import OPTIONS, TUSD_ALIASES, TUSD_DISABLES, TUSD_IGNORED, TUSD_INVERTED

_TRUE = ("", "1", "t", "true", "TRUE", "True")  # Go's strconv.ParseBool, and a bare switch
_FALSE = ("0", "f", "false", "FALSE", "False")
_SWITCHES = frozenset(option.flag for option in OPTIONS if option.switch)
_OURS = frozenset([option.flag for option in OPTIONS] + [option.file_flag for option in OPTIONS if option.secret])
_TOP_LEVEL = frozenset({"--version", "--help"})  # tusd's -version and -help


def rewrite(argv: Sequence[str], env_names: Collection[str] = ()) -> list[str]:
    """``argv`` with tusd's spellings as ours. Unknown arguments are left for argparse to refuse.
    ``env_names``: the environment's variable names (an explicit TUSD_PY_HOOKS_FORMAT is kept)."""
    out: list[str] = []
    disabled: list[str] = []
    tusd = False
    args = list(argv)
    i = 0
    while i < len(args):  # bounded: i grows every round
        arg = args[i]
        i += 1
        name, has_value, value = _split(arg)
        if name is None:
            out.append(arg)
            continue
        if name in TUSD_IGNORED and value in _TRUE + _FALSE:
            tusd = True
            continue  # a tusd switch whose wish tusd-py fulfils anyway
        known = name in _OURS or name in _TOP_LEVEL
        if (
            name in TUSD_ALIASES
            or name in TUSD_INVERTED
            or name in TUSD_DISABLES
            or (known and not arg.startswith("--"))
        ):
            tusd = True
        if name in TUSD_DISABLES or name in TUSD_INVERTED or name in _SWITCHES:
            if value not in _TRUE + _FALSE:
                out.append(arg)  # let argparse say what is wrong with it
                continue
            on = value in _TRUE
            if name in TUSD_DISABLES:
                disabled += [TUSD_DISABLES[name]] if on else []
            elif name in TUSD_INVERTED:
                out += [] if on else [TUSD_INVERTED[name]]
            else:
                out += [name] if on else []
            continue
        target = TUSD_ALIASES.get(name, name)
        if target not in _OURS and target not in _TOP_LEVEL:
            out.append(arg)
            continue
        if target == "--disable-extensions":
            disabled.append(value if has_value else (args[i] if i < len(args) else ""))
            i += 0 if has_value else 1
            continue
        if name == "--s3-object-prefix":
            if not has_value and i < len(args):
                value, has_value, i = args[i], True, i + 1
            if value and not value.endswith("/"):
                value += "/"  # tusd's S3 store separates the prefix from the id with a slash
        if name == "--log-format" or target == "--log-format":
            if not has_value and i < len(args):
                value, has_value, i = args[i], True, i + 1
            value = {"text": "console"}.get(value, value)  # tusd's text is our console
        out.append(f"{target}={value}" if has_value else target)
    if disabled:
        out += ["--disable-extensions", ",".join(item for item in disabled if item)]
    return _tusd_behaviours(out, env_names) if tusd else out


def _split(arg: str) -> tuple[str | None, bool, str]:
    """(``--name``, whether ``=value`` was attached, the value) of a flag; (None, ...) otherwise."""
    if not arg.startswith("-") or arg in ("-", "--") or arg[1:2].isdigit():
        return None, False, ""
    body = arg.lstrip("-")
    if arg.startswith("---") or not body[:1].isalpha():
        return None, False, ""
    name, has_value, value = body.partition("=")
    return "--" + name, bool(has_value), value


def _tusd_behaviours(args: list[str], env_names: Collection[str]) -> list[str]:
    names = {arg.partition("=")[0] for arg in args if arg.startswith("--")}
    extra: list[str] = []
    if "--hooks-url" in names and "--hooks-format" not in names and "TUSD_PY_HOOKS_FORMAT" not in env_names:
        extra += ["--hooks-format=tusd"]
    if "--s3-bucket" in names and "--storage" not in names:
        extra += ["--storage=s3"]  # tusd's -s3-bucket chooses the S3 store
    if "--s3-endpoint" in names and "--s3-path-style" not in names:
        extra += ["--s3-path-style"]
    return args + extra
