# Thin wrappers; the README's commands are the source of truth.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv test lint bench ci

venv: $(BIN)/mdsample

$(BIN)/mdsample: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -e '.[all,dev]'
	touch $@

test: venv
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check mdsample tests

bench: venv
	$(BIN)/python benchmarks/sampler_overhead.py

ci:
	bash .ci/run
