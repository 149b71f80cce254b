# The two entry points: `make demo` and `make test`. Each does all of its set-up itself, idempotently.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
STATE := $(CURDIR)/.ftops

# Caches stay inside the workspace so CI can keep them and nothing is fetched at run time.
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(STATE)/jsii-cache
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export TIKTOKEN_CACHE_DIR := $(STATE)/tiktoken
export HF_HOME := $(STATE)/hf
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg
export PATH := $(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup demo test test-fast lock bench clean

setup: $(VENV)/.installed node_modules/.installed $(STATE)/tiktoken/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "ftops needs Python 3.11+"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(STATE)/tiktoken/.installed: $(VENV)/.installed
	$(PY) -m jobs.data.tokenizer_files
	touch $@

demo: setup
	bash demo/run.sh

# TEST_SEED: the test order (pytest-randomly). Unset: the fixed default order; `random`: a fresh one, printed
# first (pytest -q prints no header); rerun that order with `make test TEST_SEED=N`.
TEST_SEED ?=
SEED_VALUE = $(if $(filter random,$(TEST_SEED)),$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '),$(TEST_SEED))

test: setup
	@seed="$(SEED_VALUE)"; if [ -n "$$seed" ]; then echo "test order: make test TEST_SEED=$$seed"; \
	  set -- "--randomly-seed=$$seed"; fi; echo "$(PY) -m pytest -q $$*"; $(PY) -m pytest -q "$$@"

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup  # every benchmark runs; exit 1 if any missed its goal; RESULTS.md's summary from the recorded runs
	status=0; for b in benchmarks/bench_*.py; do $(PY) $$b || status=1; done; $(PY) benchmarks/report.py; exit $$status

lock:
	$(PY) -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > constraints.txt.new
	{ echo "# The lock: exact versions for every Python package ftops and its tests use."; \
	  echo "# Regenerate with: make lock  (after changing pyproject.toml)"; cat constraints.txt.new; } > constraints.txt
	rm constraints.txt.new

clean:
	-$(PY) -m jobs.cli.main local down 2>/dev/null
	rm -rf cdk.out demo-out .pytest_cache
