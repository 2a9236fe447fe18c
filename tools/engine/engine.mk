# Targets of the engine toolchain and the local cluster (included by the top-level Makefile).
ENGINE_PYTHON = $(if $(wildcard $(ROOT)/.venv/bin/python),$(ROOT)/.venv/bin/python,python3)

engine: ## Build the Pulumi CLI, Python host, Kubernetes provider, control plane and kwok (reuses what is built)
	$(ENGINE_PYTHON) tools/engine/build.py

cluster-up: engine ## Start the local Kubernetes control plane on loopback (kubeconfig: build/cluster/kubeconfig)
	$(ENGINE_PYTHON) -m tools.cluster up

cluster-down: ## Stop the local Kubernetes control plane and every process it started
	$(ENGINE_PYTHON) -m tools.cluster down

e2e: venv engine ## Run every Kubernetes stack through the real engine against a local cluster (minutes)
	$(ENGINE_PYTHON) -m pytest tests/e2e

.PHONY: engine cluster-up cluster-down e2e
