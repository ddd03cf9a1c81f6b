"""docs/configuration.md is the flag table of tusd_py/config/options.py rendered by scripts/gen_configuration.py,
byte for byte."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from tusd_py.config.options import OPTIONS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"


def _renderer() -> Callable[[], str]:
    spec = importlib.util.spec_from_file_location("gen_configuration", ROOT / "scripts" / "gen_configuration.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    render: Callable[[], str] = module.render_markdown
    return render


render_markdown = _renderer()


def test_the_configuration_page_is_the_rendered_flag_table() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/configuration.md is stale: .venv/bin/python scripts/gen_configuration.py > docs/configuration.md"
    )


def test_every_flag_and_its_variable_are_on_the_page() -> None:
    page = render_markdown()
    for option in OPTIONS:
        assert f"| `{option.flag}` | `{option.env}" in page
        if option.secret:
            assert f"| `{option.file_flag}` | `{option.file_env}` |" in page


def test_a_help_text_naming_its_default_is_not_contradicted_by_the_default_column() -> None:
    page = render_markdown()
    assert (
        "| `--s3-endpoint` | `TUSD_PY_S3_ENDPOINT` | see meaning | S3-compatible endpoint URL (default: AWS) |" in page
    )
    assert "| `--port` | `TUSD_PY_PORT` | `1080` | port to listen on |" in page
    assert "| `--fsync` | `TUSD_PY_FSYNC=1` | `off` |" in page
    assert "(one of filesystem, s3)" in page
