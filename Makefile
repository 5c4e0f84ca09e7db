# The two commands of the README: `make demo` runs one analyze job, `make test` runs the tests.
# Both build (or reuse) the virtual environment outside the repo: see scripts/bootstrap.sh.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
MODEL_DIR ?= volume/models
DATA_DIR ?= data
export MODEL_DIR DATA_DIR

VENV := $(shell scripts/bootstrap.sh)
PY := $(VENV)/bin/python
ifeq ($(wildcard $(PY)),)
$(error the virtual environment could not be built; see the messages above)
endif

.PHONY: demo test lint format models

models:
	@if [ ! -e "$(MODEL_DIR)/manifest.json" ]; then \
	  echo "building demo models in $(MODEL_DIR) (offline; production weights: python -m scripts.fetch_models)"; \
	  $(PY) -m scripts.fetch_models --demo --dest "$(MODEL_DIR)"; \
	fi

# Runs the worker as RunPod's local test mode does, then summarises the record it stored.
demo: models
	@mkdir -p "$(DATA_DIR)"
	@$(PY) handler.py --test_input "$$(cat test_input.json)" > "$(DATA_DIR)/demo.log" 2>&1 \
	  || { tail -30 "$(DATA_DIR)/demo.log"; echo "demo failed; full log: $(DATA_DIR)/demo.log"; exit 1; }
	@$(PY) -m scripts.show_result local_test --data-dir "$(DATA_DIR)"

test: lint
	@scripts/test_services.sh
	@$(PY) -m pytest

lint:
	@$(PY) -m ruff check . && $(PY) -m ruff format --check .
	@$(PY) -m mypy

format:
	@$(PY) -m ruff format . && $(PY) -m ruff check --fix .
