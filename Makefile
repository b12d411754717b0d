# Two entry points on a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export HM_DATA_DIR ?= $(CURDIR)/data

.PHONY: install system-deps demo results test lint format dev bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Debian's chromium and PostgreSQL for the UI and team-deployment tests (root; else skipped)
system-deps:
	bash scripts/system-deps.sh

# the small world and the prediction week, with what it needs (the last validation week for
# choosing by validation, the weeks the rankers learn from): final recommendations,
# data/reports/submission.csv, data/hm.duckdb
demo: install
	$(BIN)/hm-pipeline synth --scale small --seed 42
	$(BIN)/hm-pipeline run --week 2020-09-23
	$(BIN)/hm-pipeline evaluation-table
	$(BIN)/hm-pipeline recommend 1

# every week (warm-up, six validation weeks, prediction), the reports, and the README's table
results: install
	$(BIN)/hm-pipeline synth --scale small --seed 42
	$(BIN)/hm-pipeline run --week all
	$(BIN)/hm-pipeline evaluation-table --output benchmarks/evaluation-small.md --readme README.md

test: install system-deps
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

dev: install
	$(BIN)/hm-pipeline dev

bench: install
	$(BIN)/hm-pipeline bench synth --scale full
	$(BIN)/hm-pipeline bench ingest --scale full
	$(BIN)/hm-pipeline bench oracle --scale full
	$(BIN)/hm-pipeline bench features --scale full
	$(BIN)/hm-pipeline bench candidates --scale full
	$(BIN)/hm-pipeline bench models --scale full
	$(BIN)/hm-pipeline bench twotower --scale full
	$(BIN)/hm-pipeline synth --report $(HM_DATA_DIR)/bench-full/raw --output benchmarks/world-full.md

clean:
	rm -rf $(VENV) data/lake data/dagster_home
