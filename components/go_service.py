"""GoService: one hardened, autoscaled, network-isolated Go service on Kubernetes, with its
public host and its monitoring when it has them.

The service is expected to follow the platform's Go contract: it listens on $PORT, serves
its probe paths, and on SIGTERM turns unready, drains for $SHUTDOWN_DRAIN, then shuts down
within $SHUTDOWN_TIMEOUT. The pod's grace period is derived from those two.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Union

import pulumi
from pulumi_kubernetes.apps.v1 import (
    Deployment,
    DeploymentSpecArgs,
    DeploymentStrategyArgs,
    RollingUpdateDeploymentArgs,
)
from pulumi_kubernetes.autoscaling.v2 import (
    CrossVersionObjectReferenceArgs,
    HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehaviorArgs,
    HorizontalPodAutoscalerSpecArgs,
    HPAScalingRulesArgs,
    MetricSpecArgs,
    MetricTargetArgs,
    ResourceMetricSourceArgs,
)
from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    ConfigMap,
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    HTTPGetActionArgs,
    KeyToPathArgs,
    PodSecurityContextArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    Secret,
    SecretVolumeSourceArgs,
    SecurityContextArgs,
    Service,
    ServiceAccount,
    ServicePortArgs,
    ServiceSpecArgs,
    TopologySpreadConstraintArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    IPBlockArgs,
    NetworkPolicy,
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)
from pulumi_kubernetes.policy.v1 import PodDisruptionBudget, PodDisruptionBudgetSpecArgs

from components.alert_rules import CustomAlert
from components.kubernetes_objects import service_labels, service_metadata
from components.service_dashboard import ServiceDashboard, ServiceDashboardArgs
from components.service_ingress import ServiceIngress, ServiceIngressArgs
from components.service_monitoring import ServiceMonitoring, ServiceMonitoringArgs
from components.service_signals import ServiceSignals

NONROOT_UID = 65532  # the distroless "nonroot" user
# Each secret_env value is a file here, named after its variable; <NAME>_FILE holds its path.
SECRET_FILES_DIR = "/var/run/secrets/platform"  # nosec B105 -- a directory, not a password
SECRET_FILE_MODE = 0o440  # read-only, for the pod's user and its fsGroup only
GRACE_MARGIN_SECONDS = 5  # signal delivery and process exit on top of drain + shutdown
# The track a pod serves: its series carry it (the ServiceMonitor's podTargetLabels), so a
# release's analysis reads the new version alone while the service's alerts count both.
TRACK = "track"
STABLE_POD_LABELS = {TRACK: "stable"}
CANARY_POD_LABELS = {TRACK: "canary"}
# ingress-nginx: a second Ingress for the same host and path, sent `canary-weight` % of it.
CANARY_ANNOTATION = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT_ANNOTATION = "nginx.ingress.kubernetes.io/canary-weight"


@dataclass(frozen=True)
class Caller:
    """Pods allowed to call the service: a namespace and, optionally, pod labels."""

    namespace: str
    pod_labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Peer:
    """A destination the pods may reach: in-cluster (namespace/labels) or an address block."""

    ports: Sequence[int]
    namespace: Optional[str] = None
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    cidr: Optional[str] = None
    except_cidrs: Sequence[str] = ()


@dataclass(frozen=True)
class ImageBuild:
    """Build from a Dockerfile and push; the Deployment then runs the pushed digest."""

    context: str
    dockerfile: str
    repository: str
    tag: str
    platform: str = "linux/amd64"


@dataclass(frozen=True)
class Exposure:
    """The service's public host: an Ingress routing https://<host><path> to its Service."""

    host: str
    path: str  # a prefix, matched element by element
    ingress_class: str
    tls_secret: Optional[str] = None  # an existing Secret, or ...
    cluster_issuer: Optional[str] = None  # ... cert-manager issues `<name>-tls`


@dataclass(frozen=True)
class Monitoring:
    """Prometheus scrapes the service and judges its alerts; Grafana shows its dashboard."""

    signals: ServiceSignals
    metrics_path: str
    scrape_interval: str
    runbooks_url: str
    custom_alerts: Sequence[CustomAlert] = ()
    resource_labels: Mapping[str, str] = field(default_factory=dict)  # Prometheus selects by
    dashboard_labels: Mapping[str, str] = field(default_factory=dict)  # Grafana's sidecar selects by


@dataclass(frozen=True)
class CanaryRelease:
    """A new version beside the stable one: its own Deployment (the same pod spec with its
    image, `min_replicas` pods), Service and Ingress, sent `weight` % of the ingress traffic."""

    image: str
    weight: int  # 0..100
    pod_labels: Mapping[str, str] = field(default_factory=lambda: dict(CANARY_POD_LABELS))


@dataclass(frozen=True)
class GoServiceArgs:
    namespace: pulumi.Input[str]
    image: Union[str, ImageBuild]
    port: int
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int
    min_available: int
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    liveness_path: str
    readiness_path: str
    startup_path: str
    drain_seconds: int
    shutdown_timeout_seconds: int
    label_domain: str  # a DNS domain the organization owns: prefixes the platform's own keys
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)  # file name -> content
    files_mount_path: Optional[str] = None
    callers: Sequence[Caller] = ()
    peers: Sequence[Peer] = ()
    automount_service_account_token: bool = False
    service_type: str = "ClusterIP"
    # Who may reach a NodePort or LoadBalancer Service from outside the cluster.
    service_source_ranges: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    exposure: Optional[Exposure] = None
    monitoring: Optional[Monitoring] = None
    canary: Optional[CanaryRelease] = None

    @property
    def termination_grace_period_seconds(self) -> int:
        return self.drain_seconds + self.shutdown_timeout_seconds + GRACE_MARGIN_SECONDS


@dataclass(frozen=True)
class _Parts:
    """What every object of one service shares: its name, its args, its parent, its pods."""

    name: str
    args: GoServiceArgs
    opts: pulumi.ResourceOptions  # parent: the GoService

    @property
    def selector(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name}

    @property
    def stable_selector(self) -> dict[str, str]:
        """The stable pods only. The Deployment's own selector stays `selector` (immutable in
        Kubernetes); the Service selects by this one, so a canary's pods never serve the
        stable Service's traffic."""
        return {**self.selector, **STABLE_POD_LABELS}

    @property
    def canary_selector(self) -> dict[str, str]:
        return {**self.selector, **self.args.canary.pod_labels}

    def meta(self, object_name: Optional[str] = None) -> ObjectMetaArgs:
        return service_metadata(self.name, self.args.namespace, self.args.labels,
                                object_name or self.name)


@dataclass
class _PodInputs:
    """What the pod gets beside its container image: volumes, mounts, environment, annotations."""

    volumes: list[VolumeArgs]
    mounts: list[VolumeMountArgs]
    env: list[EnvVarArgs]
    annotations: dict[str, str]


class GoService(pulumi.ComponentResource):
    """A Go service and everything under it: ServiceAccount, Deployment, Service,
    NetworkPolicy, PodDisruptionBudget, HorizontalPodAutoscaler; its image (docker Image) when
    it is built from a Dockerfile, a ConfigMap when it mounts files, a Secret when it has
    secret_env; when exposed, a ServiceIngress (its Ingress); when monitored, a
    ServiceMonitoring (ServiceMonitor and PrometheusRule) and a ServiceDashboard (the dashboard
    ConfigMap); with a canary release, its Deployment, Service and canary ServiceIngress."""

    image: pulumi.Output[str]
    service_name: pulumi.Output[str]
    public_url: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: GoServiceArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:go_service:GoService", name, None, opts)
        parts = _Parts(name, args, pulumi.ResourceOptions(parent=self))
        image = _image(parts)
        service_account = _service_account(parts)
        pod = _pod_inputs(parts)
        deployment = _deployment(parts, image, service_account, pod)
        service = _service(parts, deployment)
        _network_policy(parts)
        _disruption_budget(parts, deployment)
        _autoscaler(parts, deployment)
        self.public_url = _exposure(parts, service)
        _canary(parts, service_account, pod)
        _monitoring(parts)

        self.image = pulumi.Output.from_input(image)
        self.service_name = service.metadata.name
        self.register_outputs({"image": self.image, "service_name": self.service_name})


def _image(parts: _Parts) -> pulumi.Input[str]:
    image = parts.args.image
    if isinstance(image, str):
        return image
    import pulumi_docker as docker  # only stacks that build pay for the Docker SDK

    built = docker.Image(f"{parts.name}-image", image_name=f"{image.repository}:{image.tag}",
                         build=docker.DockerBuildArgs(context=image.context,
                                                      dockerfile=f"{image.context}/{image.dockerfile}",
                                                      platform=image.platform),
                         opts=parts.opts)
    return built.repo_digest


def _service_account(parts: _Parts) -> ServiceAccount:
    return ServiceAccount(
        f"{parts.name}-service-account", metadata=parts.meta(),
        automount_service_account_token=parts.args.automount_service_account_token,
        opts=parts.opts)


def _pod_inputs(parts: _Parts) -> _PodInputs:
    """The pod's scratch space, its mounted files and its settings: the platform's own
    (port, shutdown timing), the plain env, and the secret env as files."""
    args = parts.args
    pod = _PodInputs(
        volumes=[VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="16Mi"))],
        mounts=[VolumeMountArgs(name="tmp", mount_path="/tmp")],  # nosec B108 -- the pod's own emptyDir
        env=[EnvVarArgs(name="PORT", value=str(args.port)),
             EnvVarArgs(name="SHUTDOWN_DRAIN", value=f"{args.drain_seconds}s"),
             EnvVarArgs(name="SHUTDOWN_TIMEOUT", value=f"{args.shutdown_timeout_seconds}s")],
        annotations={})
    _mount_files(parts, pod)
    pod.env += [EnvVarArgs(name=k, value=v) for k, v in sorted(args.env.items())]
    _mount_secret_env(parts, pod)
    return pod


def _mount_files(parts: _Parts, pod: _PodInputs) -> None:
    args, name = parts.args, parts.name
    if not args.files:
        return
    config_map = ConfigMap(f"{name}-files", metadata=parts.meta(f"{name}-files"),
                           data=dict(sorted(args.files.items())), opts=parts.opts)
    pod.volumes.append(VolumeArgs(name="files", config_map=ConfigMapVolumeSourceArgs(
        name=config_map.metadata.name)))
    pod.mounts.append(VolumeMountArgs(name="files", mount_path=args.files_mount_path,
                                      read_only=True))
    # A changed file must roll the pods: they read it at start-up.
    digest = hashlib.sha256()
    for file_name, content in sorted(args.files.items()):
        digest.update(file_name.encode() + b"\0" + content.encode() + b"\0")
    pod.annotations[f"{args.label_domain}/files-sha256"] = digest.hexdigest()


def _mount_secret_env(parts: _Parts, pod: _PodInputs) -> None:
    # Secrets reach the process as files, never in its environment: a process's environment
    # is inherited by its children and shown by tooling that lists it.
    args, name = parts.args, parts.name
    if not args.secret_env:
        return
    secret = Secret(f"{name}-env", metadata=parts.meta(f"{name}-env"), type="Opaque",
                    string_data={k: pulumi.Output.secret(v)
                                 for k, v in sorted(args.secret_env.items())},
                    opts=parts.opts)
    pod.volumes.append(VolumeArgs(name="secret-env", secret=SecretVolumeSourceArgs(
        secret_name=secret.metadata.name, default_mode=SECRET_FILE_MODE,
        items=[KeyToPathArgs(key=k, path=k) for k in sorted(args.secret_env)])))
    pod.mounts.append(VolumeMountArgs(name="secret-env", mount_path=SECRET_FILES_DIR,
                                      read_only=True))
    pod.env += [EnvVarArgs(name=f"{k}_FILE", value=f"{SECRET_FILES_DIR}/{k}")
                for k in sorted(args.secret_env)]


def _probe(path: str, period: int, failures: int) -> ProbeArgs:
    return ProbeArgs(http_get=HTTPGetActionArgs(path=path, port="http"),
                     period_seconds=period, failure_threshold=failures, timeout_seconds=1)


def _container(parts: _Parts, image: pulumi.Input[str], pod: _PodInputs) -> ContainerArgs:
    args = parts.args
    return ContainerArgs(
        name=parts.name, image=image,
        ports=[ContainerPortArgs(name="http", container_port=args.port, protocol="TCP")],
        env=pod.env,
        resources=ResourceRequirementsArgs(requests=dict(args.requests),
                                           limits=dict(args.limits)),
        # Startup gives the process up to a minute; liveness then only restarts a hung one;
        # readiness is fast so a draining pod leaves the endpoints within seconds.
        startup_probe=_probe(args.startup_path, 2, 30),
        liveness_probe=_probe(args.liveness_path, 10, 3),
        readiness_probe=_probe(args.readiness_path, 2, 1),
        security_context=SecurityContextArgs(
            allow_privilege_escalation=False, read_only_root_filesystem=True,
            run_as_non_root=True, run_as_user=NONROOT_UID, run_as_group=NONROOT_UID,
            capabilities=CapabilitiesArgs(drop=["ALL"]),
            seccomp_profile=SeccompProfileArgs(type="RuntimeDefault")),
        volume_mounts=pod.mounts)


def _pod_spec(parts: _Parts, container: ContainerArgs, service_account: ServiceAccount,
              pod: _PodInputs) -> PodSpecArgs:
    args = parts.args
    return PodSpecArgs(
        service_account_name=service_account.metadata.name,
        automount_service_account_token=args.automount_service_account_token,
        termination_grace_period_seconds=args.termination_grace_period_seconds,
        security_context=PodSecurityContextArgs(
            run_as_non_root=True, run_as_user=NONROOT_UID, run_as_group=NONROOT_UID,
            fs_group=NONROOT_UID, seccomp_profile=SeccompProfileArgs(type="RuntimeDefault")),
        topology_spread_constraints=[TopologySpreadConstraintArgs(
            max_skew=1, topology_key="kubernetes.io/hostname",
            when_unsatisfiable="ScheduleAnyway",
            label_selector=LabelSelectorArgs(match_labels=parts.selector))],
        containers=[container], volumes=pod.volumes)


def _deployment(parts: _Parts, image: pulumi.Input[str], service_account: ServiceAccount,
                pod: _PodInputs) -> Deployment:
    # No spec.replicas: the HPA owns the replica count (both would fight under
    # server-side apply, pulumi-kubernetes #2491/#2569).
    labels = {**service_labels(parts.name, parts.args.labels), **STABLE_POD_LABELS}
    return Deployment(f"{parts.name}-deployment", metadata=parts.meta(), spec=_deployment_spec(
        parts, image, service_account, pod, parts.selector, labels), opts=parts.opts)


def _deployment_spec(parts: _Parts, image: pulumi.Input[str], service_account: ServiceAccount,
                     pod: _PodInputs, selector: dict, labels: dict,
                     replicas: int | None = None) -> DeploymentSpecArgs:
    """One version's pods: a surge pod at a time, never one fewer ready (the stable version's
    and a canary release's Deployments differ only in image, labels and who sets replicas)."""
    return DeploymentSpecArgs(
        replicas=replicas,
        selector=LabelSelectorArgs(match_labels=selector),
        strategy=DeploymentStrategyArgs(type="RollingUpdate", rolling_update=(
            RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1))),
        revision_history_limit=10,
        template=PodTemplateSpecArgs(
            metadata=ObjectMetaArgs(labels=labels, annotations=pod.annotations or None),
            spec=_pod_spec(parts, _container(parts, image, pod), service_account, pod)))


def _service(parts: _Parts, deployment: Deployment) -> Service:
    args = parts.args
    outside = args.service_type != "ClusterIP"
    # After the Deployment: the provider waits for its rollout, so by the time the selector
    # names the stable track, the pods carrying it serve (a Service whose selector changed
    # before its pods did would have no endpoints meanwhile).
    return Service(f"{parts.name}-service", metadata=parts.meta(), spec=ServiceSpecArgs(
        type=args.service_type, selector=parts.stable_selector,
        ports=[ServicePortArgs(name="http", port=args.port, target_port="http", protocol="TCP")],
        # `Local` keeps the client's address, so the NetworkPolicy's ipBlocks judge the
        # real source rather than a node's.
        external_traffic_policy="Local" if outside else None,
        load_balancer_source_ranges=(list(args.service_source_ranges)
                                     if args.service_type == "LoadBalancer" else None)),
        opts=pulumi.ResourceOptions.merge(parts.opts, pulumi.ResourceOptions(depends_on=[deployment])))


def _canary(parts: _Parts, service_account: ServiceAccount, pod: _PodInputs) -> None:
    """A release's new version beside the stable one: the same pod spec with its image, under
    the service's name (its NetworkPolicy and scrape cover it), told apart by its track; its own
    PodDisruptionBudget and Service; its share of the public host through the ingress
    controller's canary Ingress. No autoscaler: it runs `min_replicas` pods while its share
    is set, and is gone once promoted or rolled back."""
    args, canary = parts.args, parts.args.canary
    if canary is None:
        return
    name = f"{parts.name}-canary"
    labels = {**service_labels(parts.name, args.labels), **canary.pod_labels}
    Deployment(f"{name}-deployment", metadata=parts.meta(name), spec=_deployment_spec(
        parts, canary.image, service_account, pod, parts.canary_selector, labels,
        replicas=args.min_replicas), opts=parts.opts)
    PodDisruptionBudget(f"{name}-pdb", metadata=parts.meta(name), spec=PodDisruptionBudgetSpecArgs(
        min_available=args.min_available,
        selector=LabelSelectorArgs(match_labels=parts.canary_selector)), opts=parts.opts)
    service = Service(f"{name}-service", metadata=parts.meta(name), spec=ServiceSpecArgs(
        type="ClusterIP", selector=parts.canary_selector,
        ports=[ServicePortArgs(name="http", port=args.port, target_port="http", protocol="TCP")]),
        opts=parts.opts)
    exposure = args.exposure
    if exposure is None:
        raise ValueError("a canary release needs an exposure: its share is the ingress "
                         "controller's canary weight on the public host")
    # The stable Ingress' certificate serves the host: the canary Ingress names its Secret
    # rather than asking cert-manager for a second one.
    ServiceIngress(name, ServiceIngressArgs(
        namespace=args.namespace, service_name=service.metadata.name, service_port=args.port,
        host=exposure.host, path=exposure.path, ingress_class=exposure.ingress_class,
        tls_secret=exposure.tls_secret or f"{parts.name}-tls", labels=args.labels,
        service=parts.name,
        annotations={CANARY_ANNOTATION: "true", CANARY_WEIGHT_ANNOTATION: str(canary.weight)}),
        opts=parts.opts)


def _network_policy(parts: _Parts) -> None:
    NetworkPolicy(f"{parts.name}-network-policy", metadata=parts.meta(), spec=NetworkPolicySpecArgs(
        pod_selector=LabelSelectorArgs(match_labels=parts.selector),
        policy_types=["Ingress", "Egress"],
        ingress=_ingress_rules(parts.args), egress=_egress_rules(parts.args)),
        opts=parts.opts)


def _disruption_budget(parts: _Parts, deployment: Deployment) -> None:
    # The stable pods only: counting a canary's pods, a drain could evict every stable pod
    # while the canary's kept the budget, and the stable Service would have no endpoint left.
    # After the Deployment, like the Service: its pods carry the track by then.
    PodDisruptionBudget(f"{parts.name}-pdb", metadata=parts.meta(), spec=PodDisruptionBudgetSpecArgs(
        min_available=parts.args.min_available,
        selector=LabelSelectorArgs(match_labels=parts.stable_selector)),
        opts=pulumi.ResourceOptions.merge(parts.opts, pulumi.ResourceOptions(depends_on=[deployment])))


def _autoscaler(parts: _Parts, deployment: Deployment) -> None:
    args = parts.args
    HorizontalPodAutoscaler(f"{parts.name}-hpa", metadata=parts.meta(),
                            spec=HorizontalPodAutoscalerSpecArgs(
        scale_target_ref=CrossVersionObjectReferenceArgs(
            api_version="apps/v1", kind="Deployment", name=deployment.metadata.name),
        min_replicas=args.min_replicas, max_replicas=args.max_replicas,
        metrics=[MetricSpecArgs(type="Resource", resource=ResourceMetricSourceArgs(
            name="cpu", target=MetricTargetArgs(
                type="Utilization", average_utilization=args.target_cpu_utilization)))],
        behavior=HorizontalPodAutoscalerBehaviorArgs(
            scale_down=HPAScalingRulesArgs(stabilization_window_seconds=300))),
        opts=parts.opts)


def _exposure(parts: _Parts, service: Service) -> Optional[pulumi.Output[str]]:
    """The Ingress of an exposed service; its public URL."""
    args, exposure = parts.args, parts.args.exposure
    if exposure is None:
        return None
    ingress = ServiceIngress(parts.name, ServiceIngressArgs(
        namespace=args.namespace, service_name=service.metadata.name, service_port=args.port,
        host=exposure.host, path=exposure.path, ingress_class=exposure.ingress_class,
        tls_secret=exposure.tls_secret, cluster_issuer=exposure.cluster_issuer,
        labels=args.labels), opts=parts.opts)
    return ingress.url


def _monitoring(parts: _Parts) -> None:
    """The ServiceMonitor, PrometheusRule and dashboard of a monitored service."""
    args, monitoring = parts.args, parts.args.monitoring
    if monitoring is None:
        return
    ServiceMonitoring(parts.name, ServiceMonitoringArgs(
        namespace=args.namespace, signals=monitoring.signals, selector=parts.selector,
        pod_target_labels=sorted({TRACK, *(args.canary.pod_labels if args.canary else ())}),
        port_name="http", metrics_path=monitoring.metrics_path,
        scrape_interval=monitoring.scrape_interval, runbooks_url=monitoring.runbooks_url,
        custom_alerts=monitoring.custom_alerts,
        labels={**args.labels, **monitoring.resource_labels}), opts=parts.opts)
    ServiceDashboard(parts.name, ServiceDashboardArgs(
        namespace=args.namespace, signals=monitoring.signals,
        labels={**args.labels, **monitoring.dashboard_labels}), opts=parts.opts)


def _ingress_rules(args: GoServiceArgs) -> list[NetworkPolicyIngressRuleArgs]:
    # An ingress rule with an empty `from` admits every source, so no callers means no rule.
    peers = [NetworkPolicyPeerArgs(
        namespace_selector=LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": caller.namespace}),
        pod_selector=LabelSelectorArgs(match_labels=dict(caller.pod_labels)))
        for caller in args.callers]
    peers += [NetworkPolicyPeerArgs(ip_block=IPBlockArgs(cidr=block))
              for block in args.service_source_ranges]
    if not peers:
        return []
    return [NetworkPolicyIngressRuleArgs(
        from_=peers, ports=[NetworkPolicyPortArgs(protocol="TCP", port=args.port)])]


def _egress_rules(args: GoServiceArgs) -> list[NetworkPolicyEgressRuleArgs]:
    rules = []
    for peer in args.peers:
        if peer.cidr is not None:
            target = NetworkPolicyPeerArgs(ip_block=IPBlockArgs(
                cidr=peer.cidr, except_=list(peer.except_cidrs) or None))
        else:
            target = NetworkPolicyPeerArgs(
                namespace_selector=LabelSelectorArgs(
                    match_labels={"kubernetes.io/metadata.name": peer.namespace}),
                pod_selector=LabelSelectorArgs(match_labels=dict(peer.pod_labels)))
        rules.append(NetworkPolicyEgressRuleArgs(
            to=[target],
            ports=[NetworkPolicyPortArgs(protocol="TCP", port=p) for p in peer.ports]))
    return rules
