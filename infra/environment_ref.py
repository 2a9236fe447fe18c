"""What a component stack may know of its environment: the environment stack's outputs.

The reference is resolved before any other resource is registered, so a component stack
whose environment is missing or incomplete fails with one clear message and creates nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import pulumi
from pulumi.runtime.sync_await import _sync_await

from infra import naming
from infra.errors import PlatformError
from infra.stacks import StackName


@dataclass(frozen=True)
class EnvironmentSettings:
    """The environment stack's outputs (their names are the environment stack's exports)."""

    environment: str
    namespace: str
    kubernetes_context: str
    cloudflare_account_id: str
    cloudflare_zone_id: str
    cloudflare_zone_name: str
    base_domain: str

    def exports(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def read_environment(stack: StackName, organization: str) -> EnvironmentSettings:
    qualified = naming.environment_stack_reference(organization, stack.env)
    reference = pulumi.StackReference(qualified)
    # The same blocking wait the SDK uses for synchronous invokes: the values exist already.
    outputs = _sync_await(reference.outputs.future()) or {}
    missing = [f.name for f in fields(EnvironmentSettings) if not outputs.get(f.name)]
    if missing:
        raise PlatformError(
            f"stack '{stack}': environment stack '{qualified}' lacks output(s) "
            f"{', '.join(missing)}: run `pulumi up -s {stack.env}` first")
    return EnvironmentSettings(**{f.name: outputs[f.name] for f in fields(EnvironmentSettings)})
