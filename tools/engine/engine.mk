# Targets of the engine toolchain and the local cluster (included by the top-level Makefile).
ENGINE_PYTHON = $(if $(wildcard $(ROOT)/.venv/bin/python),$(ROOT)/.venv/bin/python,python3)

engine: ## Build the Pulumi CLI, Python host, Kubernetes provider, control plane, kwok and the image tools (reuses what is built)
	$(ENGINE_PYTHON) tools/engine/build.py

cluster-up: engine ## Start the local Kubernetes control plane on loopback (kubeconfig: build/cluster/kubeconfig)
	$(ENGINE_PYTHON) -m tools.cluster up

cluster-down: ## Stop the local Kubernetes control plane and every process it started
	$(ENGINE_PYTHON) -m tools.cluster down

# The e2e suite's processes (pytest-xdist): each runs whole test modules, with its own cluster,
# build folder and ports (tests/e2e/conftest.py). The run is bound by CPU, not by waiting: with
# three processes the two cores are busy most of the time (four took longer than three), and
# about three fifths of that CPU is Python processes (see README.md, "where the e2e time
# goes"). The slowest tests are listed at the end.
E2E_PROCESSES ?= 3

e2e: venv engine worker ## Run every Kubernetes stack through the real engine against local clusters (minutes)
	$(ENGINE_PYTHON) -m pytest tests/e2e -n $(E2E_PROCESSES) --dist loadfile --durations=25

bench-fleet: venv engine ## Whole environments at scale: 20 Go-service stacks up/preview with --parallel 1 and 4, and the offline render of 50-200 stacks (minutes)
	$(ENGINE_PYTHON) -m tools.bench.fleet

.PHONY: engine cluster-up cluster-down e2e bench-fleet
