# tusd-py: `make run` serves, `make test` tests. Both install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run` needs only the runtime dependencies; `make test` adds the dev extras on top.
RUN_STAMP := $(VENV)/.runtime-installed
PYTEST_ARGS ?=

.PHONY: run test test-quick lint conformance bench clean system-deps demo

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: bundle the /demo page (tus-js-client via esbuild, pinned in tusd_py/demo/package-lock.json)
DEMO_DIR := tusd_py/demo
DEMO_BUNDLE := $(DEMO_DIR)/static/build/app.js
$(DEMO_BUNDLE): $(DEMO_DIR)/package.json $(DEMO_DIR)/package-lock.json $(wildcard $(DEMO_DIR)/src/*.js)
	cd $(DEMO_DIR) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build
demo: $(DEMO_BUNDLE)

## run: serve http://127.0.0.1:1080/files/ with ./data storage, and the recorder page at /demo/
run: $(RUN_STAMP) $(DEMO_BUNDLE)
	@echo "recorder demo: http://$${TUSD_PY_HOST:-127.0.0.1}:$${TUSD_PY_PORT:-1080}/demo/"
	$(BIN)/tusd-py serve --demo

system-deps:
	bash scripts/ensure-system-packages.sh

## test: lint, type-check, unit + integration + browser tests, conformance suite against a live server
test: $(STAMP) system-deps $(DEMO_BUNDLE) lint
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	$(BIN)/python -m conformance.selftest

## test-quick: the fast subset (no subprocess servers, no S3 or Redis, no real clients)
test-quick: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not s3 and not redis and not interop and not browser"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

conformance: $(STAMP)
	$(BIN)/python -m conformance.selftest

BENCH_ARGS ?=
## bench: tusd-py vs @tus/server, tuspyserver and an aiohttp append limit, filesystem and S3 (~10-15 min);
## writes bench/RESULTS.md. BENCH_ARGS=--quick for a smoke run
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
