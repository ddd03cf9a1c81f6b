"""Renders docs/configuration.md from the flag table in tusd_py/config/options.py (and the defaults and
accepted values of tusd_py/config/values.py, as ``--help`` shows them).

    .venv/bin/python scripts/gen_configuration.py > docs/configuration.md

tests/config/test_configuration_doc.py fails when the file and this rendering differ.
"""

from __future__ import annotations

import sys

from tusd_py.config.loading import describe_default, expected
from tusd_py.config.options import COMMAND_GROUPS, OPTIONS

DOC_INTRO = """\
# Configuration

<!-- Generated from the flag table in tusd_py/config/options.py by `python scripts/gen_configuration.py >
docs/configuration.md`; edit the table, not this file (tests/config/test_configuration_doc.py compares them). -->

Every flag has an environment variable twin: `TUSD_PY_` + the flag in capitals, `-` as `_`
(`--max-size` is `TUSD_PY_MAX_SIZE`). A switch's variable reads `1`/`true`/`yes`/`on` or
`0`/`false`/`no`/`off`. A flag wins over its variable, a variable over the default. A `TUSD_PY_*`
variable that no flag reads is logged as a warning with the closest name. A secret can also be read
from a file, as container platforms pass them (`--jwt-secret-file`, `TUSD_PY_JWT_SECRET_FILE`; a final
newline is dropped).

`tusd-py serve --help` prints the same list by topic; `tusd-py --version` prints the version, and
`tusd-py --port 8080` means `tusd-py serve --port 8080`. A tusd command line works too: tusd's
spellings (`-upload-dir`, `-hooks-http`, `-expose-metrics=false`, one dash or two, Go durations such
as `10s`) are read as ours; [migrating-from-tusd.md](migrating-from-tusd.md) lists every tusd flag.
A bad value, or anything that keeps the server
from starting (port in use, storage directory or S3 bucket unusable, state database), is reported
before it logs `serving`: one line with the reason and the flag to change, and exit status 2, e.g.
`tusd-py: invalid configuration: --storage (env TUSD_PY_STORAGE): expected one of filesystem, s3, got 'foo'`.
"""


def render_markdown() -> str:
    """docs/configuration.md: the commands, then one table per topic (flag, variable, default, meaning)."""
    lines = [DOC_INTRO, "## Commands", "", "| command | topics it reads |", "| --- | --- |"]
    lines += [f"| `tusd-py {command}` | {', '.join(groups)} |" for command, groups in COMMAND_GROUPS.items()]
    for group in COMMAND_GROUPS["serve"]:
        lines += ["", f"## {group[0].upper()}{group[1:]}", "", "| flag | variable | default | meaning |"]
        lines.append("| --- | --- | --- | --- |")
        for option in (option for option in OPTIONS if option.group == group):
            accepts = expected(option.field)
            meaning = option.help + (f" ({accepts})" if accepts.startswith("one of") else "")
            # A help text that names its own default ("default: AWS") says it better than "none".
            default = "see meaning" if "default:" in option.help else f"`{describe_default(option.field)}`"
            env = f"`{option.env}=1`" if option.switch else f"`{option.env}`"
            lines.append(f"| `{option.flag}` | {env} | {default} | {_cell(meaning)} |")
            if option.secret:
                what = f"read {option.flag} from this file"
                lines.append(f"| `{option.file_flag}` | `{option.file_env}` | `none` | {_cell(what)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


if __name__ == "__main__":
    if sys.argv[1:]:
        sys.exit("usage: python scripts/gen_configuration.py > docs/configuration.md")
    sys.stdout.write(render_markdown())
