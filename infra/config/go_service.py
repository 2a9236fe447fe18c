"""Config of a Go-service component stack (`kind: go-service`)."""
from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from infra.config.canary import Canary
from infra.config.common import (
    ConfigModel,
    DigestRef,
    DnsLabel,
    EnvVarName,
    InvalidKey,
    LabelKey,
    LabelValue,
    Port,
    Quantity,
    RepoPath,
    Subdomain,
    UnprivilegedPort,
    UrlPath,
    matching,
    repo_file,
    require_within,
)

# The label components.go_service puts on the stable pods (STABLE_POD_LABELS) while a release
# runs beside them: a canary selector must not name it.
TRACK, STABLE_TRACK = "track", "stable"
# Set by the platform itself from other keys (port, shutdown): never from `env`.
RESERVED_ENV = frozenset({"PORT", "SHUTDOWN_DRAIN", "SHUTDOWN_TIMEOUT"})
Repository = matching(r"^[a-z0-9]+([._/:-][a-z0-9]+)*$", "an image repository without tag")


class ImageBuild(ConfigModel):
    """Build the image from the service's Dockerfile and push it (pulumi-docker)."""

    context: RepoPath = Field(description="build context folder, relative to the repository root")
    dockerfile: str = Field("Dockerfile", description="Dockerfile inside the context")
    repository: Repository = Field(description="registry repository to push to, without tag")
    platform: str = Field("linux/amd64", description="target platform of the image")

    @model_validator(mode="after")
    def _dockerfile_exists(self) -> "ImageBuild":
        if not (repo_file(self.context) / self.dockerfile).is_file():
            raise InvalidKey("dockerfile", f"no file {self.context}/{self.dockerfile}")
        return self


class Image(ConfigModel):
    """Exactly one of `ref` (a pinned reference from CI) or `build`."""

    ref: DigestRef | None = Field(None,
                            description="image pinned by digest: repo[:tag]@sha256:<64 hex>")
    build: ImageBuild | None = Field(None, description="build and push from a Dockerfile instead")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Image":
        if (self.ref is None) == (self.build is None):
            raise InvalidKey("ref", "set exactly one of image.ref or image.build")
        return self


class Scaling(ConfigModel):
    """HorizontalPodAutoscaler bounds and target; the HPA owns the replica count."""

    min_replicas: int = Field(2, ge=1, le=100, description="HPA lower bound")
    max_replicas: int = Field(4, ge=1, le=100, description="HPA upper bound")
    target_cpu_utilization: int = Field(70, ge=10, le=100,
                                        description="average CPU utilization the HPA aims for (%)")

    @model_validator(mode="after")
    def _bounds(self) -> "Scaling":
        if self.max_replicas < self.min_replicas:
            raise InvalidKey("max_replicas", f"{self.max_replicas} is below min_replicas "
                                             f"{self.min_replicas}")
        return self


class ResourceAmounts(ConfigModel):
    """CPU and memory of one container."""

    cpu: Quantity = Field(description="CPU, e.g. 100m")
    memory: Quantity = Field(description="memory, e.g. 64Mi")


class Resources(ConfigModel):
    """Container requests (scheduling) and limits (ceiling)."""

    requests: ResourceAmounts = Field(default_factory=lambda: ResourceAmounts(cpu="100m",
                                                                              memory="64Mi"))
    limits: ResourceAmounts = Field(default_factory=lambda: ResourceAmounts(cpu="500m",
                                                                            memory="128Mi"))

    @model_validator(mode="after")
    def _requests_within_limits(self) -> "Resources":
        for kind in ("cpu", "memory"):
            require_within(f"requests.{kind}", getattr(self.requests, kind),
                           f"limits.{kind}", getattr(self.limits, kind))
        return self


class Probes(ConfigModel):
    """HTTP paths the kubelet probes on the service port."""

    liveness_path: UrlPath = Field("/healthz", description="liveness endpoint")
    readiness_path: UrlPath = Field("/readyz", description="readiness endpoint")
    startup_path: UrlPath = Field("/healthz", description="startup endpoint")


class Shutdown(ConfigModel):
    """The service's own drain; the pod's termination grace period is derived from it."""

    drain_seconds: int = Field(5, ge=0, le=120, description="keep serving after SIGTERM (readiness false)")
    timeout_seconds: int = Field(10, ge=1, le=120, description="deadline for in-flight requests after the drain")


class Files(ConfigModel):
    """Read-only files from the repository, shipped in a ConfigMap and mounted in the pods."""

    mount_path: UrlPath = Field(description="directory the files appear in")
    sources: dict[str, RepoPath] = Field(min_length=1,
                                         description="file name in the pod -> repository path")

    @field_validator("sources")
    @classmethod
    def _sources_exist(cls, sources: dict[str, str]) -> dict[str, str]:
        for name, path in sources.items():
            if "/" in name or name.startswith("."):
                raise InvalidKey(name, "file names must be plain names")
            if not repo_file(path).is_file():
                raise InvalidKey(name, f"no file {path} in the repository")
        return sources


class Caller(ConfigModel):
    """A workload allowed to call the service on its port."""

    namespace: DnsLabel = Field(description="namespace of the caller")
    pod_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="labels of the calling pods (empty: every pod there)")


def _check_cidrs(key: str, blocks: list[str]) -> None:
    for block in blocks:
        try:
            ipaddress.ip_network(block)
        except ValueError:
            raise InvalidKey(key, f"'{block}' is not a CIDR block") from None


class Peer(ConfigModel):
    """A destination the service's pods may reach (besides DNS)."""

    namespace: DnsLabel | None = Field(None, description="in-cluster peer: its namespace")
    pod_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict,
                                                    description="in-cluster peer: its pod labels")
    cidr: str | None = Field(None, description="outside peer: address block, e.g. 0.0.0.0/0")
    except_cidrs: list[str] = Field(default_factory=list,
                                    description="blocks carved out of `cidr` (e.g. private ranges)")
    ports: list[Port] = Field(min_length=1, description="TCP ports allowed to the peer")

    @model_validator(mode="after")
    def _one_kind(self) -> "Peer":
        if (self.namespace is None) == (self.cidr is None):
            raise InvalidKey("namespace", "set exactly one of namespace or cidr")
        _check_cidrs("cidr", [self.cidr] if self.cidr else [])
        _check_cidrs("except_cidrs", self.except_cidrs)
        if self.except_cidrs and self.cidr is None:
            raise InvalidKey("except_cidrs", "only valid with cidr")
        return self


Duration = matching(r"^[1-9][0-9]*(s|m|h)$", "a duration such as 30s, 5m or 1h")
MetricPrefix = matching(r"^[a-z][a-z0-9_]*$", "a metric name prefix (a-z, 0-9, _)")
AlertName = matching(r"^[A-Z][A-Za-z0-9]*$", "an alert name in CamelCase, e.g. QueueBacklogHigh")


class Expose(ConfigModel):
    """Publish the service through the environment's ingress controller (an Ingress)."""

    subdomain: Subdomain = Field(description="public host under the environment's base domain: "
                                             "api serves api.<base_domain>")
    path: UrlPath = Field(description="path prefix routed to the service, e.g. /v1 (never one "
                                      "that covers the metrics path)")
    tls_secret: DnsLabel | None = Field(None, description="existing TLS Secret in the namespace")
    cluster_issuer: DnsLabel | None = Field(
        None, description="cert-manager ClusterIssuer that issues the certificate instead")

    @model_validator(mode="after")
    def _one_certificate_source(self) -> "Expose":
        if (self.tls_secret is None) == (self.cluster_issuer is None):
            raise InvalidKey("tls_secret", "set exactly one of tls_secret or cluster_issuer: a "
                                           "public host is served over TLS only")
        return self


RoutePattern = matching(r"^/[\w./{}-]*\Z", "a route pattern as the service labels its metrics, "
                                            "e.g. /v1/ai/complete or /v1/modules/{name}")


LatencyMs = Annotated[int, Field(ge=1, le=60000)]


class Slo(ConfigModel):
    """Service level objectives the alerts and the dashboard are derived from."""

    availability: float = Field(99.9, ge=90.0, lt=100.0,
                                description="% of requests answered without a 5xx, over 30 days")
    latency_p99_ms: int = Field(1000, ge=1, le=60000,
                                description="99th percentile request latency target (ms) of every "
                                            "route not in `route_latency_p99_ms`")
    route_latency_p99_ms: dict[RoutePattern, LatencyMs] = Field(
        default_factory=dict, description="route pattern -> its own p99 target (ms), for a route "
                                          "that waits on something slower (e.g. a Worker)")


class CustomAlert(ConfigModel):
    """An alert of the service's own, beside the standard ones."""

    alert: AlertName = Field(description="alert name; its runbook is docs/runbooks/<alert>.md")
    expr: str = Field(min_length=1, description="PromQL expression (promtool checks it)")
    for_: Duration = Field("5m", alias="for", description="how long it must hold before firing")
    severity: Literal["critical", "warning"] = Field(
        "warning", description="critical pages, warning opens a ticket")
    summary: str = Field(min_length=1, description="one line saying what is wrong")

    @model_validator(mode="after")
    def _runbook_exists(self) -> "CustomAlert":
        if not repo_file(f"docs/runbooks/{self.alert}.md").is_file():
            raise InvalidKey("alert", f"no runbook docs/runbooks/{self.alert}.md: every alert "
                                      "links one")
        return self


class ServiceMonitoring(ConfigModel):
    """How the environment's Prometheus scrapes the service and what its metrics are called."""

    metrics_path: UrlPath = Field("/metrics", description="path of the Prometheus metrics")
    scrape_interval: Duration = Field("30s", description="how often Prometheus scrapes")
    metric_prefix: MetricPrefix | None = Field(
        None, description="prefix of <prefix>_http_requests_total etc. (default: the name, "
                          "with _ for -)")
    circuit_breaker: bool = Field(False, description="the service exports "
                                                     "<prefix>_circuit_breaker_state and "
                                                     "_circuit_breaker_transitions_total{from,to}")
    outbound_calls: list[MetricPrefix] = Field(
        default_factory=list, description="callees with <prefix>_<callee>_calls_total{outcome} "
                                          "and _call_duration_seconds")
    alerts: list[CustomAlert] = Field(default_factory=list,
                                      description="alerts of the service's own")

    @field_validator("alerts")
    @classmethod
    def _alert_names_unique(cls, alerts: list[CustomAlert]) -> list[CustomAlert]:
        names = [a.alert for a in alerts]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"alert '{name}' is declared twice")
        return alerts


class GoServiceConfig(ConfigModel):
    kind: Literal["go-service"] = Field(description="selects this model")
    organization: str = Field("organization", min_length=1,
                              description="backend organization holding the environment stack")
    name: DnsLabel | None = Field(None, description="Kubernetes name (default: the component name)")
    image: Image
    port: UnprivilegedPort = Field(8080, description="container port (non-root: 1024 or higher)")
    scaling: Scaling = Field(default_factory=Scaling)
    min_available: int = Field(1, ge=0, description="PodDisruptionBudget minAvailable")
    resources: Resources = Field(default_factory=Resources)
    probes: Probes = Field(default_factory=Probes)
    shutdown: Shutdown = Field(default_factory=Shutdown)
    env: dict[EnvVarName, str] = Field(default_factory=dict, description="plain environment")
    secret_env: dict[EnvVarName, SecretStr] = Field(
        default_factory=dict, description="secret environment (set with --secret)")
    files: Files | None = Field(None, description="read-only config files to mount")
    callers: list[Caller] = Field(default_factory=list,
                                  description="who may call the service (none: nobody)")
    peers: list[Peer] = Field(default_factory=list, description="what the pods may reach besides DNS")
    service_account_token: bool = Field(False, description="mount a service-account token")
    expose: Expose | None = Field(None, description="public host and path (an Ingress)")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", description="the Service's type: NodePort or LoadBalancer reach the pods "
                                 "from outside the cluster, from service_source_ranges only")
    service_source_ranges: list[str] = Field(
        default_factory=list, description="address blocks that may reach a NodePort or "
                                          "LoadBalancer Service (its NetworkPolicy admits them)")
    slo: Slo = Field(default_factory=Slo)
    monitoring: ServiceMonitoring = Field(default_factory=ServiceMonitoring)
    canary: Canary = Field(default_factory=Canary,
                           description="`platform rollout`: traffic steps and the analysis "
                                       "between them")

    @model_validator(mode="after")
    def _consistent(self) -> "GoServiceConfig":
        scrape = int(self.monitoring.scrape_interval[:-1]) * {"s": 1, "m": 60, "h": 3600}[
            self.monitoring.scrape_interval[-1]]
        if self.canary.window_seconds < 2 * scrape:
            raise InvalidKey("canary.window_seconds",
                             f"{self.canary.window_seconds} must cover at least two scrapes "
                             f"(monitoring.scrape_interval {self.monitoring.scrape_interval}), "
                             f"or the analysis has no rate to measure")
        self._release_consistent()
        if self.min_available >= self.scaling.min_replicas:
            raise InvalidKey("min_available",
                             f"{self.min_available} must be below scaling.min_replicas "
                             f"{self.scaling.min_replicas}, or no pod can ever be evicted")
        for name in (set(self.env) | set(self.secret_env)) & RESERVED_ENV:
            raise InvalidKey(f"env.{name}", "is set by the platform (from port/shutdown)")
        for name in set(self.env) & set(self.secret_env):
            raise InvalidKey(f"env.{name}", "also set in secret_env")
        for name in set(self.env) & {f"{secret}_FILE" for secret in self.secret_env}:
            raise InvalidKey(f"env.{name}", f"is set by the platform (the path of secret_env."
                                            f"{name[:-len('_FILE')]}'s file)")
        _check_cidrs("service_source_ranges", self.service_source_ranges)
        if self.service_type != "ClusterIP" and not self.service_source_ranges:
            raise InvalidKey("service_source_ranges",
                             f"must name the address blocks that may reach a {self.service_type} "
                             "Service (e.g. 203.0.113.0/24): its NetworkPolicy admits no one else")
        if self.service_type == "ClusterIP" and self.service_source_ranges:
            raise InvalidKey("service_source_ranges", "applies only when service_type is NodePort "
                                                      "or LoadBalancer")
        if self.expose and _covers(self.expose.path, self.monitoring.metrics_path):
            raise InvalidKey("expose.path", f"{self.expose.path} would publish the metrics path "
                                            f"{self.monitoring.metrics_path} through the ingress "
                                            "controller: expose the API's own prefix, e.g. /v1")
        return self

    def _release_consistent(self) -> None:
        release = self.canary.release
        if release is None:
            return
        if self.image.ref is None:
            raise InvalidKey("canary.release", "needs the stable image pinned by image.ref: a "
                                               "release replaces it by its own digest when promoted")
        if release.image == self.image.ref:
            raise InvalidKey("canary.release.image", f"{release.image} is already the stable "
                                                     "image.ref: nothing to roll out")
        if self.expose is None:
            raise InvalidKey("canary.release", "needs expose: the new version's share is the "
                                               "ingress controller's canary weight on the "
                                               "service's public host")
        if self.canary.selector.get(TRACK) == STABLE_TRACK:
            raise InvalidKey("canary.selector", "track: stable is the label of the stable pods: "
                                                "the selector must name the new version's own "
                                                "(default track: canary)")


def _covers(prefix: str, path: str) -> bool:
    """Whether an Ingress `Prefix` path matches `path` (it matches whole path elements)."""
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")
