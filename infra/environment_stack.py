"""`<env>` stacks: the Environment component and the settings component stacks read."""
from __future__ import annotations

from typing import Any

import pulumi

from components.environment import Environment, EnvironmentArgs
from infra.config.environment import EnvironmentConfig
from infra.environment_ref import EnvironmentSettings, IngressSettings, MonitoringSettings
from infra.project import PROJECT_ROOT
from infra.providers import kubernetes_provider
from infra.project import project_root
from infra.stacks import StackName, promotion_order


def pod_security_version() -> str:
    """The Pod Security policy version follows the Kubernetes minor the platform targets."""
    return "v" + (PROJECT_ROOT / "tools" / "kubernetes-version").read_text().strip()


async def build(stack: StackName, config: EnvironmentConfig) -> dict[str, Any]:
    promotion_order(project_root())  # an order that cannot be followed is refused here too
    provider = kubernetes_provider(stack, config.kubernetes.context)
    quota, defaults = config.quota, config.container_defaults
    hard_quota = {"requests.cpu": quota.requests_cpu, "requests.memory": quota.requests_memory,
                  "limits.cpu": quota.limits_cpu, "limits.memory": quota.limits_memory,
                  "pods": str(quota.pods)}
    environment = Environment(stack.env, EnvironmentArgs(
        namespace=config.namespace,
        pod_security_version=pod_security_version(),
        quota=hard_quota,
        container_defaults={
            "default": {"cpu": defaults.limit_cpu, "memory": defaults.limit_memory},
            "defaultRequest": {"cpu": defaults.request_cpu, "memory": defaults.request_memory}},
        dns_namespace=config.dns.namespace,
        dns_pod_labels=config.dns.pod_labels,
        labels={f"{config.label_domain}/environment": stack.env}),
        # Children inherit `protect`: destroying the namespace would take every component
        # stack's objects with it, so it takes a deliberate unprotect first.
        opts=pulumi.ResourceOptions(providers=[provider], protect=config.deletion_protection))
    settings = EnvironmentSettings(
        environment=stack.env, namespace=config.namespace,
        kubernetes_context=config.kubernetes.context,
        cloudflare_account_id=config.cloudflare.account_id,
        cloudflare_zone_id=config.cloudflare.zone_id,
        cloudflare_zone_name=config.cloudflare.zone_name,
        base_domain=config.base_domain,
        label_domain=config.label_domain,
        ingress=IngressSettings(**config.ingress.model_dump()),
        monitoring=MonitoringSettings(**config.monitoring.model_dump()))
    # The namespace output follows the created object, so a component stack waits for it.
    # The quota is for the policy pack: it holds each component's HPA to it (policy/).
    outputs = {**settings.exports(), "namespace": environment.namespace, "quota": hard_quota}
    if config.images is not None:  # for the policy pack: where the components' images may come from
        outputs["images"] = config.images.model_dump(mode="json", exclude_none=True)
    if config.lifetime is not None:  # what `platform env sweep` reads from the backend
        outputs["lifetime"] = config.lifetime.model_dump(mode="json")
    return outputs
