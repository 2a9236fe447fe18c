"""What a component stack may know of its environment: the environment stack's outputs.

A component stack awaits these outputs before it registers any other resource, so one whose
environment stack lacks them fails with one clear message and creates nothing. (An environment
stack that does not exist at all is refused by the engine itself: `unknown stack`.)
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Optional

import pulumi

from infra import naming
from infra.errors import PlatformError
from infra.stacks import StackName


@dataclass(frozen=True)
class IngressSettings:
    """The environment's ingress controller: its class, and where its pods run."""

    class_name: str
    namespace: str
    pod_labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitoringSettings:
    """Whether the environment runs monitoring, where Prometheus runs, and the labels its
    Prometheus and Grafana select objects by."""

    enabled: bool
    namespace: str
    prometheus_pod_labels: Mapping[str, str] = field(default_factory=dict)
    resource_labels: Mapping[str, str] = field(default_factory=dict)
    dashboard_labels: Mapping[str, str] = field(default_factory=dict)
    runbooks_url: Optional[str] = None


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
    label_domain: str
    ingress: IngressSettings
    monitoring: MonitoringSettings
    # Outputs a component stack passes on as its own `environment_<name>` outputs (FORWARDED).
    forwarded: Mapping[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # Read back from a StackReference, the nested settings arrive as plain mappings.
        for name, kind in (("ingress", IngressSettings), ("monitoring", MonitoringSettings)):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, kind(**value))

    def exports(self) -> dict[str, Any]:
        return {name: asdict(value) if is_dataclass(value) else value
                for name, value in ((name, getattr(self, name)) for name in REQUIRED)}


REQUIRED = [f.name for f in fields(EnvironmentSettings) if f.name != "forwarded"]
# A policy pack judging a component stack sees the stack's outputs but never the StackReference
# they came from (the engine leaves read resources out of a stack validation): what a rule
# needs of the environment, the component stack passes on as `environment_<name>` outputs.
FORWARDED = ("quota", "cloudflare_zone_name", "cloudflare_zone_id", "images")


async def read_environment(stack: StackName, organization: str) -> EnvironmentSettings:
    qualified = naming.environment_stack_reference(organization, stack.env)
    reference = pulumi.StackReference(qualified)
    outputs = {}
    for name in REQUIRED:
        details = await reference.get_output_details(name)
        outputs[name] = details.value if details.value is not None else details.secret_value
    missing = [name for name in REQUIRED if not outputs.get(name)]
    if missing:
        raise PlatformError(
            f"stack '{stack}': environment stack '{qualified}' lacks output(s) "
            f"{', '.join(missing)}: run `pulumi up -s {stack.env}` first")
    forwarded = {}
    for name in FORWARDED:
        details = await reference.get_output_details(name)
        if details.value is not None:
            forwarded[f"environment_{name}"] = details.value
    return EnvironmentSettings(**{name: outputs[name] for name in REQUIRED}, forwarded=forwarded)
