"""Config of an environment stack (`staging`, `production`)."""
from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from infra.config.common import (
    CloudflareId,
    ConfigModel,
    DnsLabel,
    Hostname,
    InvalidKey,
    LabelKey,
    LabelValue,
    Quantity,
    RepoPath,
    matching,
    repo_file,
    require_within,
)

HttpsUrl = matching(r"^https://[^\s/?#]+(/[^\s?#]*)?$", "an https:// URL without query or fragment")
# A registry host (with its port) and optionally a path under it: images must start with it.
RegistryPrefix = matching(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$",
                          "a registry host[:port][/path] such as registry.example.com/platform")


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


class Promotion(ConfigModel):
    """Where the environment stands in the promotion order (read by `infra.stacks`)."""

    after: DnsLabel | None = Field(None, description="the environment a change is promoted "
                                                     "through before this one (none: the first)")


class ImageSigner(ConfigModel):
    """Who must have signed an image: a cosign public key, or a keyless (Sigstore) identity,
    the OIDC issuer and the subject of the signing certificate (on GitHub: the workflow)."""

    key: RepoPath | None = Field(None, description="a cosign public key file, relative to the "
                                                   "repository root (offline signing)")
    issuer: HttpsUrl | None = Field(None, description="keyless: the OIDC issuer of the signing "
                                                      "certificate, e.g. "
                                                      "https://token.actions.githubusercontent.com")
    subject: str | None = Field(None, min_length=1, description="keyless: the certificate's "
                                "identity, e.g. https://github.com/OWNER/REPO/.github/workflows/"
                                "images.yml@refs/heads/main")

    @model_validator(mode="after")
    def _one_way(self) -> "ImageSigner":
        if self.key is not None and (self.issuer or self.subject):
            raise InvalidKey("key", "set either key, or issuer and subject (keyless), not both")
        if self.key is None and not (self.issuer and self.subject):
            raise InvalidKey("subject" if self.issuer else "issuer",
                             "set key, or both issuer and subject (keyless)")
        if self.key is not None and not repo_file(self.key).is_file():
            raise InvalidKey("key", f"no file {self.key}")
        return self


class ImageAdmission(ConfigModel):
    """Which images the environment admits. In production every rule is enforced (the policy
    pack refuses an image outside `registries`, `platform preview`/`up` refuse one `signer`
    did not sign); elsewhere they are warnings."""

    registries: list[RegistryPrefix] = Field(
        min_length=1, description="where images may come from: a registry host[:port][/path]; "
                                  "an image is admitted when its repository is under one")
    signer: ImageSigner | None = Field(None, description="who must have signed every image "
                                                         "(cosign verify, by digest)")


class Lifetime(ConfigModel):
    """An ephemeral environment's origin and time to live, recorded when `platform env create`
    made it; `platform env sweep` destroys it once expired."""

    template: DnsLabel = Field(description="the environment whose settings it was made from")
    created_at: dt.datetime = Field(description="when it was created (UTC, ISO 8601)")
    expires_at: dt.datetime = Field(description="when `platform env sweep` may destroy it")

    @model_validator(mode="after")
    def _expires_after_creation(self) -> "Lifetime":
        if self.expires_at <= self.created_at:
            raise InvalidKey("expires_at", "must be later than created_at")
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
    promotion: Promotion = Field(default_factory=Promotion)
    images: ImageAdmission | None = Field(
        None, description="the images the environment admits: registries and signer (production "
                          "must set it; see docs/rollouts.md)")
    lifetime: Lifetime | None = Field(
        None, description="set on an ephemeral environment (a pull request's) by `platform env "
                          "create`: it is in no promotion order and is destroyed once expired")
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
