# tusd-py: `make run` serves, `make test` tests. Both install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test test-quick lint conformance bench clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: serve http://127.0.0.1:1080/files/ with ./data storage
run: $(STAMP)
	$(BIN)/tusd-py serve

system-deps:
	bash scripts/ensure-system-packages.sh

## test: lint, type-check, unit + integration tests, conformance suite against a live server
test: $(STAMP) system-deps lint
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	$(BIN)/python -m conformance.selftest

## test-quick: the fast subset (no subprocess servers, no S3, no real clients)
test-quick: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not s3 and not interop"

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
