# tokumei — everything a fresh machine with Python 3.11, git and make needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
RUN := $(UV) run --frozen

DEMO_DIR ?= demo
DEMO_DATE ?= 2026-11-24
DEMO_USERS ?= 3000
export GX_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1

.PHONY: help venv native demo test test-all test-integration lint bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(TOOLS)/bin/uv:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# --compile-bytecode: pipeline steps run in fresh processes (docs/architecture.md §2: one process per task), and
# where .pyc files cannot be written at import time (PYTHONDONTWRITEBYTECODE, read-only images)
# every process would compile GX, Presidio, spaCy and Airflow from source again: 5.9 -> 2.6 s
# to import great_expectations, 2.7 -> 1.2 s for airflow (bench/results/scale.md).
.venv/.synced: uv.lock pyproject.toml Makefile | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

# The native JSON Lines pass (docs/adr/0009-native-jsonl-reader.md): C with the vendored yyjson,
# loaded with ctypes. Without it the typed read uses DuckDB alone (same output, slower).
NATIVE := tokumei/ingest/_jsonl.so
$(NATIVE): csrc/jsonl/jsonl.c csrc/jsonl/jsonl.h csrc/yyjson/yyjson.c csrc/yyjson/yyjson.h
	$(CC) -O2 -fPIC -shared -o $@ csrc/jsonl/jsonl.c csrc/yyjson/yyjson.c

native: $(NATIVE)  ## build the native JSON Lines reader (part of venv)

venv: .venv/.synced $(NATIVE)  ## create .venv from uv.lock (installs uv into .tools/ if missing)

demo: venv  ## generate sample data, run the usage_analytics DAG with Airflow, show the results
	@bash scripts/demo.sh "$(DEMO_DIR)" "$(DEMO_DATE)" "$(DEMO_USERS)"

test: venv  ## unit, property, DAG and end-to-end tests, and the docstring examples (what CI runs)
	$(RUN) ruff check .
	$(RUN) pytest -q -p no:cacheprovider --doctest-modules tokumei
	$(RUN) pytest -q -m "not integration" -p no:cacheprovider

test-all: venv  ## also the integration tests that need PostgreSQL / Redis
	$(RUN) pytest -q -p no:cacheprovider

test-integration: venv  ## only the integration tests (PostgreSQL + Redis + an Airflow Celery cluster)
	$(RUN) pytest -q -m integration -p no:cacheprovider

lint: venv  ## ruff
	$(RUN) ruff check .

bench: venv  ## benchmarks (see bench/README.md)
	$(RUN) python bench/kanon_adult.py

clean:  ## remove the demo output and caches (keeps .venv)
	rm -rf $(DEMO_DIR) .pytest_cache .ruff_cache
