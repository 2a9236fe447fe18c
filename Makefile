# Front door of the project. `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

-include tools/engine/engine.mk

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'
