"""The build backend: setuptools, refusing a wheel or sdist that would lack the /demo bundle.

``tusd_py/demo/static/build/`` is made by ``make demo`` (npm + esbuild) and ignored by git, so a plain
``pip install .`` or ``python -m build`` of a fresh checkout would otherwise ship a server whose
``/demo/`` answers 503 for its script. Built from an sdist the bundle is already inside (the sdist
carries it), so the check passes there without Node. Editable installs (``make run``/``make test``)
are not checked: they serve the page from the checkout, where ``make demo`` builds it in place.
Everything else is setuptools' own ``build_meta``.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - the whole PEP 517/660 interface, re-exported

# The files routes.py serves from the bundle; the map and licence file come with every esbuild run.
DEMO_BUNDLE = ("app.js", "app.js.map", "app.js.LEGAL.txt")
BUNDLE_DIR = Path("tusd_py/demo/static/build")


class MissingDemoBundle(RuntimeError):
    pass


def check_demo_bundle(source_dir: Path) -> None:
    """Raise, naming the fix, when the demo bundle is not in ``source_dir``."""
    missing = [name for name in DEMO_BUNDLE if not (source_dir / BUNDLE_DIR / name).is_file()]
    if missing:
        raise MissingDemoBundle(
            f"the /demo bundle is not built ({', '.join(str(BUNDLE_DIR / name) for name in missing)} missing): "
            "run `make demo` (Node.js + npm) first, or `make dist`, which does; "
            "a wheel or sdist without it would serve a broken /demo/ page"
        )


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, str | list[str]] | None = None,
    metadata_directory: str | None = None,
) -> str:
    check_demo_bundle(Path.cwd())
    name: str = _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    return name


def build_sdist(sdist_directory: str, config_settings: dict[str, str | list[str]] | None = None) -> str:
    check_demo_bundle(Path.cwd())
    name: str = _setuptools.build_sdist(sdist_directory, config_settings)
    return name
