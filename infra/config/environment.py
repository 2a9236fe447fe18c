"""Config of an environment stack (`staging`, `production`)."""
from __future__ import annotations

from pydantic import Field, model_validator

from infra.config.common import (CloudflareId, ConfigModel, DnsLabel, Hostname, InvalidKey,
                                 LabelKey, LabelValue, Quantity, matching, require_within)

HttpsUrl = matching(r"^https://[^\s/?#]+(/[^\s?#]*)?$", "an https:// URL without query or fragment")


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


class IngressController(ConfigModel):
    """The ingress controller exposed Go services go through (their Ingress class and callers).

    Exposed Go services get an Ingress of its class, and their NetworkPolicy admits its pods:
    one source for both."""

    class_name: DnsLabel = Field("nginx", description="IngressClass the controller serves")
    namespace: DnsLabel = Field("ingress-nginx", description="namespace of the controller pods")
    pod_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "ingress-nginx"},
        description="labels of the controller pods")


class Monitoring(ConfigModel):
    """Whether monitoring is on, and where Prometheus and Grafana run and select objects by.

    When enabled, Go services get a ServiceMonitor, a PrometheusRule and a dashboard ConfigMap,
    and their NetworkPolicy admits Prometheus: one source for both."""

    enabled: bool = Field(False, description="create monitoring objects (needs the Prometheus "
                                             "operator's CRDs in the cluster)")
    namespace: DnsLabel = Field("monitoring", description="namespace Prometheus runs in")
    prometheus_pod_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "prometheus"},
        description="labels of the Prometheus pods (admitted to scrape the services)")
    resource_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="labels Prometheus selects ServiceMonitors and "
                                          "PrometheusRules by (its serviceMonitorSelector/ruleSelector)")
    dashboard_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"grafana_dashboard": "1"},
        description="labels Grafana's dashboard sidecar picks ConfigMaps up by")
    runbooks_url: HttpsUrl | None = Field(
        None, description="where docs/runbooks is browsable; alerts link <url>/<alert>.md "
                          "(required when enabled)")

    @model_validator(mode="after")
    def _runbooks_when_enabled(self) -> "Monitoring":
        if self.enabled and self.runbooks_url is None:
            raise InvalidKey("runbooks_url", "required when monitoring is enabled: every alert "
                                             "links its runbook")
        return self


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
    ingress: IngressController = Field(default_factory=IngressController)
    monitoring: Monitoring = Field(default_factory=Monitoring)
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
