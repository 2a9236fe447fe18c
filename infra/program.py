"""The program: stack name -> config model -> component -> stack outputs."""
from __future__ import annotations

import importlib

import pulumi

from infra.config.loader import load_config
from infra.project import project_root
from infra.stacks import parse_stack_name

# Config model name -> the module that builds it. Imported lazily so each stack pays only
# for the provider SDK it uses (the Cloudflare SDK alone costs ~1.4 s to import).
BUILDERS = {
    "EnvironmentConfig": "infra.environment_stack",
    "GoServiceConfig": "infra.go_service_stack",
    "WorkerConfig": "infra.worker_stack",
}


def main() -> None:
    stack = parse_stack_name(pulumi.get_stack(), project_root())
    config = load_config(stack)  # raises one ConfigError before anything is registered
    builder = importlib.import_module(BUILDERS[type(config).__name__])
    # A builder is a coroutine: a component stack awaits its environment stack's outputs
    # before it registers anything. `pulumi.run` awaits it and exports the mapping it returns.
    pulumi.run(lambda: builder.build(stack, config))
