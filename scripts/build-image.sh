#!/usr/bin/env bash
# Builds the container image from the Containerfile: `make image`, and tests/packaging/test_container.py.
#
#   scripts/build-image.sh TAG [ENGINE BUILD ARGS...]    e.g. --build-arg BASE=localhost/base:bookworm
#
# The build context is staged in build/image/ (or $CONTEXT): the Containerfile, requirements/runtime.lock,
# the project's wheel from dist/ (or $DIST; `make dist` builds it) and the locked runtime dependencies as
# wheels for the image's platform (CPython 3.11, glibc x86_64), downloaded here, hash-checked against the
# lock, and cached in ~/.cache/tusd-py/wheelhouse/ per lock. The image installs them with --no-index
# --require-hashes: its build needs no network and installs exactly the lock.
# CONTAINER_ENGINE=docker works too (podman by default); the image is written in Docker format, which
# keeps its HEALTHCHECK (the OCI format has none).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:?usage: scripts/build-image.sh TAG [ENGINE BUILD ARGS...]}
shift
engine=${CONTAINER_ENGINE:-podman}
python=${PYTHON:-.venv/bin/python}
dist=${DIST:-dist}
context=${CONTEXT:-build/image}

wheels=("$dist"/tusd_py-*.whl)
if [ ! -f "${wheels[0]}" ] || [ ${#wheels[@]} -ne 1 ]; then
  echo "build-image: need exactly one tusd_py wheel in $dist/ (run \`make dist\`), found: ${wheels[*]}" >&2
  exit 2
fi

lock_hash=$(sha256sum requirements/runtime.lock | cut -c1-16)
wheelhouse=${XDG_CACHE_HOME:-$HOME/.cache}/tusd-py/wheelhouse/$lock_hash
if [ ! -f "$wheelhouse/.complete" ]; then
  rm -rf "$wheelhouse.partial"
  # PIP_CONFIG_FILE=/dev/null: this machine's pip configuration (extra indexes, constraints) has no
  # say; the hashes decide which files are acceptable. Platforms: every manylinux tag Debian
  # bookworm's glibc 2.36 runs (pip widens only the legacy manylinux2014 by itself).
  platforms=(--platform manylinux2014_x86_64)
  for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
  # Markers off: pip would judge them by this machine's Python (async-timeout is for < 3.11.3, which
  # Debian's 3.11.2 is); the image's pip judges them when it installs.
  mkdir -p "$wheelhouse.partial"
  sed -E 's/^([A-Za-z0-9_.-]+==[^ ;]+) ;[^\\]*/\1 /' requirements/runtime.lock > "$wheelhouse.partial/all.lock"
  PIP_CONFIG_FILE=/dev/null "$python" -m pip download --quiet --disable-pip-version-check \
    --require-hashes --no-deps --only-binary :all: \
    --python-version 3.11 --implementation cp "${platforms[@]}" \
    -d "$wheelhouse.partial" -r "$wheelhouse.partial/all.lock"
  touch "$wheelhouse.partial/.complete"
  rm -rf "$wheelhouse"
  mv "$wheelhouse.partial" "$wheelhouse"
fi

rm -rf "$context"
mkdir -p "$context/wheels"
cp Containerfile requirements/runtime.lock "${wheels[0]}" "$context/"
cp "$wheelhouse"/*.whl "$context/wheels/"
BUILDAH_FORMAT=docker "$engine" build --tag "$tag" "$@" --file "$context/Containerfile" "$context"
