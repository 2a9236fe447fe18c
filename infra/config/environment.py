"""Config of an environment stack (`staging`, `production`)."""
from __future__ import annotations

from pydantic import Field, model_validator

from infra.config.common import (CloudflareId, ConfigModel, DnsLabel, Hostname, InvalidKey,
                                 LabelKey, LabelValue, Quantity, require_within)


class KubernetesTarget(ConfigModel):
    """The cluster the environment deploys to."""

    context: str = Field(min_length=1, description="kubeconfig context of the environment's "
                                                   "cluster; the provider refuses any other")


class CloudflareTarget(ConfigModel):
    """The Cloudflare account and zone the environment's Workers live in."""

    account_id: CloudflareId = Field(description="Cloudflare account id (32 hex digits)")
    zone_id: CloudflareId = Field(description="id of the zone the environment's routes live in")
    zone_name: Hostname = Field(description="name of that zone, e.g. example.com")


class Quota(ConfigModel):
    """ResourceQuota of the namespace: what all components together may use."""

    requests_cpu: Quantity = Field("4", description="total CPU all pods may request")
    requests_memory: Quantity = Field("8Gi", description="total memory all pods may request")
    limits_cpu: Quantity = Field("8", description="total CPU limit of all pods")
    limits_memory: Quantity = Field("16Gi", description="total memory limit of all pods")
    pods: int = Field(50, ge=1, description="maximum number of pods in the namespace")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> "Quota":
        for kind in ("cpu", "memory"):
            require_within(f"requests_{kind}", getattr(self, f"requests_{kind}"),
                           f"limits_{kind}", getattr(self, f"limits_{kind}"))
        return self


class ContainerDefaults(ConfigModel):
    """LimitRange defaults for containers that declare no resources of their own."""

    request_cpu: Quantity = Field("100m", description="default CPU request")
    request_memory: Quantity = Field("64Mi", description="default memory request")
    limit_cpu: Quantity = Field("500m", description="default CPU limit")
    limit_memory: Quantity = Field("256Mi", description="default memory limit")


class DnsTarget(ConfigModel):
    """Where the cluster DNS runs: the only egress every pod gets by default."""

    namespace: DnsLabel = Field("kube-system", description="namespace of the cluster DNS pods")
    pod_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"k8s-app": "kube-dns"},
        description="labels of the cluster DNS pods")


class EnvironmentConfig(ConfigModel):
    namespace: DnsLabel = Field(description="namespace every component of the environment runs in")
    kubernetes: KubernetesTarget
    cloudflare: CloudflareTarget
    base_domain: Hostname = Field(description="domain the environment's public names live under")
    label_domain: Hostname = Field(
        description="a domain your organization owns: the prefix of the platform's own label and "
                    "annotation keys (e.g. <label_domain>/environment)")
    quota: Quota = Field(default_factory=Quota)
    container_defaults: ContainerDefaults = Field(default_factory=ContainerDefaults)
    dns: DnsTarget = Field(default_factory=DnsTarget)
    deletion_protection: bool = Field(
        True, description="protect every object of the environment: `pulumi destroy` is refused "
                          "until `pulumi state unprotect --all` (component stacks live inside)")

    @model_validator(mode="after")
    def _base_domain_in_zone(self) -> "EnvironmentConfig":
        zone = self.cloudflare.zone_name
        if self.base_domain != zone and not self.base_domain.endswith("." + zone):
            raise InvalidKey("base_domain", f"'{self.base_domain}' is outside the zone '{zone}' "
                                             "(cloudflare.zone_name)")
        return self
