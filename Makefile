# churnml: every target is one line that calls the package. `make` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# any python3 bootstraps uv; the project runs on Python 3.11-3.13 (3.11 preferred when present,
# else another installed one, else uv provides one)
PYTHON ?= python3
PROJECT_PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || echo ">=3.11,<3.14")
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
UV := .tools/bin/uv
CHURNML := $(PY) -m churnml
DATA_DIR ?= data/demo
PYTEST_ARGS ?=
# two workers; each test file is one unit of work, the long ones first (tests/conftest.py)
XDIST := -n 2 --dist loadfile --no-loadscope-reorder

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: help setup browser postgres data validate features labels train tune ui score report bench lint format test test-fast demo clean

help: ## list the targets with what they do
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	$(PYTHON) -m venv .tools && .tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python "$(PROJECT_PYTHON)" --extra spark --quiet
	@touch $@

setup: $(VENV)/.installed ## create .venv with the pinned dependencies of uv.lock (with the spark extra)
	@echo "environment ready: $(VENV) ($$($(PY) --version))"

browser: ## install Debian's chromium for the page tests (headless; needs root or sudo)
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

postgres: ## install Debian's postgresql (server binaries for the warehouse tests and bench; needs root or sudo)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }

data: setup ## generate the synthetic demo base into data/demo (5,000 accounts, 3 years)
	$(CHURNML) generate --out $(DATA_DIR)

validate: setup ## check data/demo against the data contract
	$(CHURNML) validate --data-dir $(DATA_DIR)

features: setup ## build the point-in-time feature table of the demo base (outputs/features.parquet)
	$(CHURNML) features --data-dir $(DATA_DIR)

labels: setup ## build churn/expansion labels of the demo base (outputs/labels.parquet)
	$(CHURNML) labels --data-dir $(DATA_DIR)

train: setup ## backtest, train, calibrate and register the models in MLflow (report in outputs/train)
	$(CHURNML) train --data-dir $(DATA_DIR)

tune: setup ## search LightGBM parameters with Optuna (saved to models/best_params.json, used by train)
	$(CHURNML) tune --data-dir $(DATA_DIR)

ui: setup ## start the MLflow UI on http://127.0.0.1:5000
	$(CHURNML) ui

score: setup ## score every active account of the demo base with the champion model (outputs/scores/), backfilling 6 past months of history
	$(CHURNML) score --data-dir $(DATA_DIR) --backfill 6

report: setup ## write the CSM pages from the latest scores (outputs/report/index.html)
	$(CHURNML) report

bench: setup postgres ## benchmarks: validate + features from the files vs via pandas (5x base); training with time to churn vs the classifier alone; scoring + explanations vs prediction; reading from PostgreSQL vs Parquet and publishing 200,000 accounts
	$(PY) benchmarks/bench_features.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_scoring.py
	$(PY) benchmarks/bench_warehouse.py

lint: setup ## ruff (lint and format check) and mypy: what CI runs before the tests
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples
	$(PY) -m mypy

format: setup ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix src tests benchmarks examples
	$(PY) -m ruff format src tests benchmarks examples

test: setup browser postgres ## run the whole test suite (fast, slow, Spark, browser and PostgreSQL tests)
	$(PY) -m pytest $(XDIST) -q $(PYTEST_ARGS)

test-fast: setup ## run the fast tests only (skip those marked slow)
	$(PY) -m pytest $(XDIST) -q -m "not slow" $(PYTEST_ARGS)

demo: data validate train score report ## the main job on the demo base: data -> validate -> features -> train -> register -> score -> CSM pages
	@echo "demo done: training report in outputs/train, scores in outputs/scores/scores.csv, CSM pages in outputs/report/index.html, models in MLflow (make ui)"

clean: ## remove generated data, outputs and caches (keeps the environment)
	rm -rf data outputs .pytest_cache
