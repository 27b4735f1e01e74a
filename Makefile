# Two commands: `make run` (benchmark every architecture) and `make test`.
# Both create .venv on first use. `make run` installs mnistbench with its runtime
# dependencies only; `make test` (and lint, benchmark) add the development extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per install, so a later `make test` adds the development extra to a
# venv that `make run` created, and editing pyproject.toml reinstalls both.
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
# Extra arguments for `make run`, e.g. make run ARGS="--epochs 1 --train-limit 2000"
ARGS ?=

.PHONY: install install-dev run test lint benchmark docs clean

install: $(RUNTIME)

install-dev: $(DEV)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV) $(RUNTIME)

run: $(RUNTIME)
	$(BIN)/mnistbench run --all $(ARGS)

# The test files run on one pytest-xdist worker per CPU (at most 4: each imports
# TensorFlow); a file's tests stay on one worker, and the files are handed out in the
# order tests/conftest.py sets (longest first), not re-sorted by xdist by test count.
test: $(DEV)
	$(BIN)/python -m pytest -n auto --maxprocesses=4 --dist loadfile --no-loadscope-reorder

# ruff, and the layering contracts of docs/development.md (also a test: tests/test_layering.py).
lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

benchmark: $(DEV)
	$(BIN)/python -m pytest benchmarks $(ARGS)

# Regenerate the generated reference pages: docs/columns.md from the metric registry and
# docs/cli.md from the click commands (tests check both are current).
docs: $(RUNTIME)
	$(BIN)/python -m mnistbench.columns > docs/columns.md
	$(BIN)/python -m mnistbench.cli.reference > docs/cli.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
