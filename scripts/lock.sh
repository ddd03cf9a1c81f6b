#!/usr/bin/env bash
# Re-resolves the locks from pyproject.toml: `make lock`. Universal (every platform and Python
# >= 3.11 that pyproject.toml allows) with hashes, so pip or uv can install them with --require-hashes.
# The dev lock takes the runtime lock as a constraint, so the two never pin a package differently.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
common=(--quiet --universal --python-version 3.11 --generate-hashes --upgrade)
"$UV" pip compile "${common[@]}" --no-header requirements/uv.in -o requirements/uv.txt
"$UV" pip compile "${common[@]}" pyproject.toml requirements/build.in -o requirements/runtime.lock
"$UV" pip compile "${common[@]}" --extra dev pyproject.toml requirements/build.in \
  -c requirements/runtime.lock -o requirements/dev.lock
echo "locks updated; review with: git diff --stat requirements/"
