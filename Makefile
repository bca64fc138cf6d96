# Meterflow — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
STAMP := $(VENV)/.installed
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_VERSION := 3.3.30

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

.PHONY: install
install: $(STAMP) ## Create .venv with the pinned dependencies

.PHONY: demo
demo: $(STAMP) ## Start the local cloud, run the HES scenario end to end, print a summary, stop
	$(VENV)/bin/meterflow demo

.PHONY: up
up: $(STAMP) ## Start the local cloud and keep it serving (API :8000, SFTP :2222, moto :5050) until Ctrl-C
	$(VENV)/bin/meterflow up

.PHONY: test
test: $(STAMP) $(CHECKOV_STAMP) ## Lint, type-check, then unit, adapter, static (Terraform) and end-to-end tests
	$(MAKE) --no-print-directory lint
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov $(PY) -m pytest

.PHONY: test-fast
test-fast: $(STAMP) ## Unit and adapter tests only
	$(PY) -m pytest tests/unit tests/adapters

.PHONY: lint
lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check meterflow workers chalice_app tests bench
	$(VENV)/bin/mypy meterflow workers chalice_app

.PHONY: format
format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format meterflow workers chalice_app tests bench
	$(VENV)/bin/ruff check --fix .

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks; results go to bench/results/
	$(PY) -m bench.run_all

.PHONY: package
package: $(STAMP) ## Build the Lambda deployment zip with Chalice (build/deployment.zip) for Terraform
	rm -rf chalice_app/vendor build/chalice
	$(PY) -m pip install --quiet --no-deps --target chalice_app/vendor .
	cd chalice_app && ../$(VENV)/bin/chalice package --stage prod ../build/chalice
	cp build/chalice/deployment.zip build/deployment.zip

.PHONY: clean
clean: ## Remove virtualenvs, caches and local state
	rm -rf $(VENV) $(CHECKOV_VENV) .meterflow build .pytest_cache .mypy_cache .ruff_cache chalice_app/vendor
