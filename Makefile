# Two commands for a newcomer: `make demo` and `make test`. Everything is installed
# into .venv by this file; nothing else is needed but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint unit cassettes bench notebooks clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,demo]'
	rm -f $(VENV)/.installed-*
	touch $@

## demo: run the demo jobs on a local Dagster started here, and show what runlens sees
demo: $(STAMP)
	$(BIN)/runlens demo

## test: lint, then every test (unit, cassette replay, live against a local Dagster, notebooks)
test: $(STAMP)
	$(BIN)/ruff check runlens tests
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check runlens tests

## unit: the tests that need no server
unit: $(STAMP)
	$(BIN)/python -m pytest -m "not live"

## cassettes: re-record cassettes/ from a live demo Dagster (never by hand)
cassettes: $(STAMP)
	$(BIN)/python -m tests.record_cassettes

## notebooks: execute every notebook against a live demo Dagster (also part of `make test`)
notebooks: $(STAMP)
	$(BIN)/python -m pytest tests/live/test_notebooks.py

## bench: benchmarks against baselines (not part of `make test`)
bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
