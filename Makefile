# tusd-py: `make run` serves, `make test` tests. Both install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run` needs only the runtime dependencies; `make test` adds the dev extras on top.
RUN_STAMP := $(VENV)/.runtime-installed
PYTEST_ARGS ?=

.PHONY: run test test-quick test-latest lock lint conformance bench clean system-deps demo dist image

# Every environment installs exactly a lock (requirements/*.lock, hashes included) with uv; see
# requirements/README.md. uv itself comes from requirements/uv.txt, also pinned with hashes.
UV := $(BIN)/uv
UV_PIP := $(UV) pip
LOCKS := requirements/runtime.lock requirements/dev.lock

# Each step says when it starts, so a CI log shows where a cold `make test` spends its time.
STEP = @echo "== $$(date -u +%H:%M:%S) $(1)"

$(UV): requirements/uv.txt
	$(call STEP,venv and uv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/uv.txt
	touch $(UV)

# `make run` needs only the runtime lock; when the venv already holds the dev lock (a superset with
# the same pins, tests/packaging/test_lock.py keeps it so) there is nothing to change.
$(RUN_STAMP): $(UV) requirements/runtime.lock
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt requirements/dev.lock ]; then \
	  echo "the dev lock is installed (it holds the runtime lock's pins)"; \
	else \
	  $(UV_PIP) sync --quiet --python $(BIN)/python --require-hashes requirements/runtime.lock && \
	  $(UV_PIP) install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e . ; \
	fi
	touch $(RUN_STAMP)

$(STAMP): $(UV) requirements/dev.lock
	$(call STEP,installing requirements/dev.lock)
	$(UV_PIP) sync --quiet --python $(BIN)/python --require-hashes requirements/dev.lock
	$(UV_PIP) install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(STAMP) $(RUN_STAMP)

## lock: re-resolve requirements/*.lock from pyproject.toml on purpose (newest versions the ranges allow)
lock: $(UV)
	bash scripts/lock.sh

## test-latest: mypy and the quick tests against the newest versions pyproject.toml allows (not the lock),
## in .venv-latest, so an upstream release that breaks us is found here first. Not part of `make test`.
test-latest:
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/pip install --quiet --upgrade pip
	.venv-latest/bin/pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	.venv-latest/bin/pip list --format=freeze > .venv-latest/versions.txt
	.venv-latest/bin/mypy
	.venv-latest/bin/pytest -q -p no:cacheprovider -m "$(QUICK)"

## demo: bundle the /demo page (tus-js-client via esbuild, pinned in tusd_py/demo/package-lock.json)
DEMO_DIR := tusd_py/demo
DEMO_BUNDLE := $(DEMO_DIR)/static/build/app.js
$(DEMO_BUNDLE): $(DEMO_DIR)/package.json $(DEMO_DIR)/package-lock.json $(wildcard $(DEMO_DIR)/src/*.js)
	$(call STEP,building the /demo bundle)
	cd $(DEMO_DIR) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build
demo: $(DEMO_BUNDLE)

## dist: the sdist and the wheel in dist/, the /demo bundle inside both (scripts/build_backend.py refuses
## a build without it), built with the locked setuptools (no isolation) and checked by twine
dist: $(STAMP) $(DEMO_BUNDLE)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/twine check --strict dist/*

## image: the container image $(IMAGE) (Containerfile) from dist/'s wheel and the locked runtime wheels,
## with podman (CONTAINER_ENGINE=docker also works); BASE=... builds over another Python base image
IMAGE ?= tusd-py:latest
image: dist
	bash scripts/build-image.sh $(IMAGE) $(if $(BASE),--build-arg BASE=$(BASE))

## run: serve http://127.0.0.1:1080/files/ with ./data storage, and the recorder page at /demo/
run: $(RUN_STAMP) $(DEMO_BUNDLE)
	@echo "recorder demo: http://$${TUSD_PY_HOST:-127.0.0.1}:$${TUSD_PY_PORT:-1080}/demo/"
	$(BIN)/tusd-py serve --demo

system-deps:
	$(call STEP,system packages)
	bash scripts/ensure-system-packages.sh

## test: lint, type-check, unit + integration + browser tests, conformance suite against a live server.
## -rs lists every skip with its reason; the last line counts them. Under CI=true a missing real part
## (SeaweedFS, PostgreSQL, nginx, Redis, chromium) fails instead of skipping (tests/real_parts.py).
## Two workers (pytest-xdist), a test file per worker at a time (--dist loadfile: a file's module
## fixtures start once, and a file's tests never race each other); the 20 slowest are listed.
TEST_WORKERS ?= 2
test: $(STAMP) system-deps $(DEMO_BUNDLE) lint
	$(call STEP,pytest)
	$(BIN)/pytest -q -rs -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=20 $(PYTEST_ARGS)
	$(call STEP,conformance self-test)
	$(BIN)/python -m conformance.selftest
	$(call STEP,done)

## test-quick: the fast subset, under 2 minutes: no subprocess servers, no S3, Redis, PostgreSQL or
## nginx, no real clients or browser, no long fuzz profile
QUICK := not slow and not s3 and not redis and not postgres and not nginx and not interop and not browser and not fuzz_long
test-quick: $(STAMP)
	$(BIN)/pytest -q -rs -p no:cacheprovider -n auto -m "$(QUICK)"

lint: $(STAMP)
	$(call STEP,lint and types)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

conformance: $(STAMP)
	$(BIN)/python -m conformance.selftest

BENCH_ARGS ?=
## bench: tusd-py vs @tus/server, tuspyserver and an aiohttp append limit, filesystem and S3 (~10-15 min);
## writes bench/RESULTS.md. BENCH_ARGS=--quick for a smoke run, BENCH_ARGS=--targets for issue 27's targets alone (~5 min)
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-latest .pytest_cache .mypy_cache .ruff_cache dist build
