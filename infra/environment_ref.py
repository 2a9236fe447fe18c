"""What a component stack may know of its environment: the environment stack's outputs.

A component stack awaits these outputs before it registers any other resource, so one whose
environment stack lacks them fails with one clear message and creates nothing. (An environment
stack that does not exist at all is refused by the engine itself: `unknown stack`.)
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import pulumi

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


async def read_environment(stack: StackName, organization: str) -> EnvironmentSettings:
    qualified = naming.environment_stack_reference(organization, stack.env)
    reference = pulumi.StackReference(qualified)
    outputs = {}
    for setting in fields(EnvironmentSettings):
        details = await reference.get_output_details(setting.name)
        outputs[setting.name] = details.value if details.value is not None else details.secret_value
    missing = [f.name for f in fields(EnvironmentSettings) if not outputs.get(f.name)]
    if missing:
        raise PlatformError(
            f"stack '{stack}': environment stack '{qualified}' lacks output(s) "
            f"{', '.join(missing)}: run `pulumi up -s {stack.env}` first")
    return EnvironmentSettings(**{f.name: outputs[f.name] for f in fields(EnvironmentSettings)})
