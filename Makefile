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
# The repository's tags are immutable: every push gets its own (commit, then time).
ifndef IMAGE_TAG
IMAGE_TAG := $(shell git describe --always --dirty 2>/dev/null || echo build)-$(shell date -u +%Y%m%d%H%M%S)
endif
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
UV_STAMP := $(UV_VENV)/.installed
UV_VERSION := 0.13.9
# `make lock LOCK_FLAGS+=--upgrade` moves every unpinned transitive dependency to its newest version.
LOCK_FLAGS := --quiet --generate-hashes --python-platform x86_64-manylinux_2_28 --custom-compile-command 'make lock'

# Every package, transitive ones included, at the version and hash requirements/dev.lock pins
# (`make lock` regenerates it from pyproject.toml); then the project itself, without resolving.
$(STAMP): pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(UV_STAMP):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install --quiet uv==$(UV_VERSION)
	touch $@

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

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
	$(MAKE) --no-print-directory -j2 --output-sync=target test-suite test-terraform

# Two lanes side by side: Terraform's apply against moto spends most of its time waiting on the
# provider's propagation checks, not on the CPU, so it overlaps well with the rest of the suite.
TERRAFORM_TESTS := tests/deploy tests/static/test_terraform_validate.py

.PHONY: test-suite
test-suite: $(STAMP) $(CHECKOV_STAMP) ## Every test but the Terraform lane (unit, adapters, static, package, e2e)
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov $(PY) -m pytest $(addprefix --ignore=,$(TERRAFORM_TESTS))

.PHONY: test-terraform
test-terraform: $(STAMP) ## terraform fmt/init/validate, then apply, plan and destroy against a moto server (tests/deploy)
	$(PY) -m pytest $(TERRAFORM_TESTS)

.PHONY: test-localstack
test-localstack: $(STAMP) ## End-to-end tests against a real LocalStack (host mode, no Docker; installs .venv-localstack)
	$(PY) scripts/localstack/run_e2e.py

.PHONY: test-fast
test-fast: $(STAMP) ## Unit and adapter tests only
	$(PY) -m pytest tests/core tests/aws tests/hes tests/lake tests/bridge tests/onprem tests/localcloud tests/functional

.PHONY: lint
lint: $(STAMP) ## ruff, mypy and the import contracts (lint-imports; [tool.importlinter] in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check meterflow workers chalice_app tests bench
	$(VENV)/bin/mypy meterflow workers chalice_app
	$(VENV)/bin/lint-imports

.PHONY: format
format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format meterflow workers chalice_app tests bench
	$(VENV)/bin/ruff check --fix .

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks; results go to bench/results/
	$(PY) -m bench.run_all

.PHONY: lock
lock: $(UV_STAMP) ## Re-lock requirements/lambda.lock (the image: py3.12 manylinux x86_64) and requirements/dev.lock from pyproject.toml
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) --python-version 3.12 \
		--output-file requirements/lambda.lock
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) --extra local --extra dev --python-version 3.11 \
		--constraint requirements/lambda.lock --output-file requirements/dev.lock

.PHONY: package
package: $(STAMP) ## Build build/lambda/, the Lambda image's task root, from requirements/lambda.lock
	$(PY) scripts/build_lambda_artifact.py --lock requirements/lambda.lock --output build/lambda

.PHONY: image
image: package ## Build lambda.Dockerfile and push it to ECR: make image IMAGE_REPOSITORY=<terraform output LambdaImageRepositoryUrl>
	@test -n "$(IMAGE_REPOSITORY)" || { echo "usage: make image IMAGE_REPOSITORY=<account>.dkr.ecr.<region>.amazonaws.com/<stack>/lambda" >&2; exit 2; }
	aws ecr get-login-password --region $(word 4,$(subst ., ,$(IMAGE_REPOSITORY))) \
		| docker login --username AWS --password-stdin $(firstword $(subst /, ,$(IMAGE_REPOSITORY)))
	DOCKER_BUILDKIT=1 docker build --platform linux/amd64 --provenance=false -f lambda.Dockerfile \
		-t $(IMAGE_REPOSITORY):$(IMAGE_TAG) .
	docker push $(IMAGE_REPOSITORY):$(IMAGE_TAG)
	@# the digest this repository gave the push (an image pushed elsewhere too has several)
	@echo "lambda_image_uri = \"$$(docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' \
		$(IMAGE_REPOSITORY):$(IMAGE_TAG) | grep '^$(IMAGE_REPOSITORY)@')\""

.PHONY: clean
clean: ## Remove virtualenvs, caches and local state
	rm -rf $(VENV) $(CHECKOV_VENV) $(UV_VENV) .venv-localstack .meterflow build .pytest_cache .mypy_cache .ruff_cache
