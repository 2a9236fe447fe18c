# Targets of the engine toolchain and the local cluster (included by the top-level Makefile).
ENGINE_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

engine: ## Build the Pulumi CLI, Python host, Kubernetes provider and control plane (reuses what is built)
	$(ENGINE_PYTHON) tools/engine/build.py

cluster-up: engine ## Start the local Kubernetes control plane on loopback (kubeconfig in build/cluster/)
	$(ENGINE_PYTHON) -m tools.cluster up

cluster-down: ## Stop the local Kubernetes control plane and every process it started
	$(ENGINE_PYTHON) -m tools.cluster down

e2e: engine ## Run the real engine end to end against a local cluster (tests/e2e/, a few minutes)
	$(ENGINE_PYTHON) -m pytest tests/e2e
