"""GoService: one hardened, autoscaled, network-isolated Go service on Kubernetes.

The service is expected to follow the platform's Go contract: it listens on $PORT, serves
its probe paths, and on SIGTERM turns unready, drains for $SHUTDOWN_DRAIN, then shuts down
within $SHUTDOWN_TIMEOUT. The pod's grace period is derived from those two.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Union

import pulumi
from pulumi_kubernetes.apps.v1 import (Deployment, DeploymentSpecArgs, DeploymentStrategyArgs,
                                       RollingUpdateDeploymentArgs)
from pulumi_kubernetes.autoscaling.v2 import (CrossVersionObjectReferenceArgs,
                                              HorizontalPodAutoscaler,
                                              HorizontalPodAutoscalerBehaviorArgs,
                                              HorizontalPodAutoscalerSpecArgs,
                                              HPAScalingRulesArgs, MetricSpecArgs,
                                              MetricTargetArgs, ResourceMetricSourceArgs)
from pulumi_kubernetes.core.v1 import (CapabilitiesArgs, ConfigMap,
                                       ConfigMapVolumeSourceArgs, ContainerArgs,
                                       ContainerPortArgs, EmptyDirVolumeSourceArgs,
                                       EnvVarArgs, HTTPGetActionArgs, KeyToPathArgs,
                                       PodSecurityContextArgs, PodSpecArgs, PodTemplateSpecArgs,
                                       ProbeArgs, ResourceRequirementsArgs, SeccompProfileArgs,
                                       Secret, SecretVolumeSourceArgs, SecurityContextArgs,
                                       Service, ServiceAccount, ServicePortArgs, ServiceSpecArgs,
                                       TopologySpreadConstraintArgs, VolumeArgs,
                                       VolumeMountArgs)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (IPBlockArgs, NetworkPolicy,
                                             NetworkPolicyEgressRuleArgs,
                                             NetworkPolicyIngressRuleArgs,
                                             NetworkPolicyPeerArgs, NetworkPolicyPortArgs,
                                             NetworkPolicySpecArgs)
from pulumi_kubernetes.policy.v1 import PodDisruptionBudget, PodDisruptionBudgetSpecArgs

from components.kubernetes_objects import service_labels, service_metadata

NONROOT_UID = 65532  # the distroless "nonroot" user
# Each secret_env value is a file here, named after its variable; <NAME>_FILE holds its path.
SECRET_FILES_DIR = "/var/run/secrets/platform"  # nosec B105 -- a directory, not a password
SECRET_FILE_MODE = 0o440  # read-only, for the pod's user and its fsGroup only
GRACE_MARGIN_SECONDS = 5  # signal delivery and process exit on top of drain + shutdown


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

    @property
    def termination_grace_period_seconds(self) -> int:
        return self.drain_seconds + self.shutdown_timeout_seconds + GRACE_MARGIN_SECONDS


class GoService(pulumi.ComponentResource):
    """ServiceAccount, Deployment, Service, NetworkPolicy, PodDisruptionBudget and HPA."""

    image: pulumi.Output[str]
    service_name: pulumi.Output[str]

    def __init__(self, name: str, args: GoServiceArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:go_service:GoService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        selector = {"app.kubernetes.io/name": name}
        labels = service_labels(name, args.labels)

        def meta(object_name: str = name) -> ObjectMetaArgs:
            return service_metadata(name, args.namespace, args.labels, object_name)

        image = self._image(name, args.image, child)
        service_account = ServiceAccount(
            f"{name}-service-account", metadata=meta(),
            automount_service_account_token=args.automount_service_account_token, opts=child)

        volumes, mounts, pod_annotations = self._files(name, args, meta, child)
        env = [EnvVarArgs(name="PORT", value=str(args.port)),
               EnvVarArgs(name="SHUTDOWN_DRAIN", value=f"{args.drain_seconds}s"),
               EnvVarArgs(name="SHUTDOWN_TIMEOUT", value=f"{args.shutdown_timeout_seconds}s")]
        env += [EnvVarArgs(name=k, value=v) for k, v in sorted(args.env.items())]
        if args.secret_env:
            # Secrets reach the process as files, never in its environment: a process's
            # environment is inherited by its children and shown by tooling that lists it.
            secret = Secret(f"{name}-env", metadata=meta(f"{name}-env"), type="Opaque",
                            string_data={k: pulumi.Output.secret(v)
                                         for k, v in sorted(args.secret_env.items())},
                            opts=child)
            volumes.append(VolumeArgs(name="secret-env", secret=SecretVolumeSourceArgs(
                secret_name=secret.metadata.name, default_mode=SECRET_FILE_MODE,
                items=[KeyToPathArgs(key=k, path=k) for k in sorted(args.secret_env)])))
            mounts.append(VolumeMountArgs(name="secret-env", mount_path=SECRET_FILES_DIR,
                                          read_only=True))
            env += [EnvVarArgs(name=f"{k}_FILE", value=f"{SECRET_FILES_DIR}/{k}")
                    for k in sorted(args.secret_env)]

        def probe(path: str, period: int, failures: int) -> ProbeArgs:
            return ProbeArgs(http_get=HTTPGetActionArgs(path=path, port="http"),
                             period_seconds=period, failure_threshold=failures,
                             timeout_seconds=1)

        container = ContainerArgs(
            name=name, image=image,
            ports=[ContainerPortArgs(name="http", container_port=args.port, protocol="TCP")],
            env=env,
            resources=ResourceRequirementsArgs(requests=dict(args.requests),
                                               limits=dict(args.limits)),
            # Startup gives the process up to a minute; liveness then only restarts a hung one;
            # readiness is fast so a draining pod leaves the endpoints within seconds.
            startup_probe=probe(args.startup_path, 2, 30),
            liveness_probe=probe(args.liveness_path, 10, 3),
            readiness_probe=probe(args.readiness_path, 2, 1),
            security_context=SecurityContextArgs(
                allow_privilege_escalation=False, read_only_root_filesystem=True,
                run_as_non_root=True, run_as_user=NONROOT_UID, run_as_group=NONROOT_UID,
                capabilities=CapabilitiesArgs(drop=["ALL"]),
                seccomp_profile=SeccompProfileArgs(type="RuntimeDefault")),
            volume_mounts=mounts)

        pod_spec = PodSpecArgs(
            service_account_name=service_account.metadata.name,
            automount_service_account_token=args.automount_service_account_token,
            termination_grace_period_seconds=args.termination_grace_period_seconds,
            security_context=PodSecurityContextArgs(
                run_as_non_root=True, run_as_user=NONROOT_UID, run_as_group=NONROOT_UID,
                fs_group=NONROOT_UID, seccomp_profile=SeccompProfileArgs(type="RuntimeDefault")),
            topology_spread_constraints=[TopologySpreadConstraintArgs(
                max_skew=1, topology_key="kubernetes.io/hostname",
                when_unsatisfiable="ScheduleAnyway",
                label_selector=LabelSelectorArgs(match_labels=selector))],
            containers=[container], volumes=volumes)

        # No spec.replicas: the HPA owns the replica count (both would fight under
        # server-side apply, pulumi-kubernetes #2491/#2569).
        deployment = Deployment(f"{name}-deployment", metadata=meta(), spec=DeploymentSpecArgs(
            selector=LabelSelectorArgs(match_labels=selector),
            strategy=DeploymentStrategyArgs(type="RollingUpdate", rolling_update=(
                RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1))),
            revision_history_limit=10,
            template=PodTemplateSpecArgs(
                metadata=ObjectMetaArgs(labels=labels, annotations=pod_annotations or None),
                spec=pod_spec)),
            opts=child)

        outside = args.service_type != "ClusterIP"
        service = Service(f"{name}-service", metadata=meta(), spec=ServiceSpecArgs(
            type=args.service_type, selector=selector,
            ports=[ServicePortArgs(name="http", port=args.port, target_port="http",
                                   protocol="TCP")],
            # `Local` keeps the client's address, so the NetworkPolicy's ipBlocks judge the
            # real source rather than a node's.
            external_traffic_policy="Local" if outside else None,
            load_balancer_source_ranges=(list(args.service_source_ranges)
                                         if args.service_type == "LoadBalancer" else None)),
            opts=child)

        NetworkPolicy(f"{name}-network-policy", metadata=meta(), spec=NetworkPolicySpecArgs(
            pod_selector=LabelSelectorArgs(match_labels=selector),
            policy_types=["Ingress", "Egress"],
            ingress=self._ingress_rules(args), egress=self._egress_rules(args)),
            opts=child)

        PodDisruptionBudget(f"{name}-pdb", metadata=meta(), spec=PodDisruptionBudgetSpecArgs(
            min_available=args.min_available,
            selector=LabelSelectorArgs(match_labels=selector)), opts=child)

        HorizontalPodAutoscaler(f"{name}-hpa", metadata=meta(),
                                spec=HorizontalPodAutoscalerSpecArgs(
            scale_target_ref=CrossVersionObjectReferenceArgs(
                api_version="apps/v1", kind="Deployment", name=deployment.metadata.name),
            min_replicas=args.min_replicas, max_replicas=args.max_replicas,
            metrics=[MetricSpecArgs(type="Resource", resource=ResourceMetricSourceArgs(
                name="cpu", target=MetricTargetArgs(
                    type="Utilization", average_utilization=args.target_cpu_utilization)))],
            behavior=HorizontalPodAutoscalerBehaviorArgs(
                scale_down=HPAScalingRulesArgs(stabilization_window_seconds=300))),
            opts=child)

        self.image = pulumi.Output.from_input(image)
        self.service_name = service.metadata.name
        self.register_outputs({"image": self.image, "service_name": self.service_name})

    @staticmethod
    def _image(name: str, image: Union[str, ImageBuild],
               opts: pulumi.ResourceOptions) -> pulumi.Input[str]:
        if isinstance(image, str):
            return image
        import pulumi_docker as docker  # only stacks that build pay for the Docker SDK

        built = docker.Image(f"{name}-image", image_name=f"{image.repository}:{image.tag}",
                             build=docker.DockerBuildArgs(context=image.context,
                                                          dockerfile=f"{image.context}/{image.dockerfile}",
                                                          platform=image.platform),
                             opts=opts)
        return built.repo_digest

    @staticmethod
    def _files(name: str, args: GoServiceArgs, meta, opts: pulumi.ResourceOptions):
        volumes = [VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="16Mi"))]
        mounts = [VolumeMountArgs(name="tmp", mount_path="/tmp")]  # nosec B108 -- the pod's own emptyDir
        if not args.files:
            return volumes, mounts, {}
        config_map = ConfigMap(f"{name}-files", metadata=meta(f"{name}-files"),
                               data=dict(sorted(args.files.items())), opts=opts)
        volumes.append(VolumeArgs(name="files", config_map=ConfigMapVolumeSourceArgs(
            name=config_map.metadata.name)))
        mounts.append(VolumeMountArgs(name="files", mount_path=args.files_mount_path,
                                      read_only=True))
        # A changed file must roll the pods: they read it at start-up.
        digest = hashlib.sha256()
        for file_name, content in sorted(args.files.items()):
            digest.update(file_name.encode() + b"\0" + content.encode() + b"\0")
        return volumes, mounts, {f"{args.label_domain}/files-sha256": digest.hexdigest()}

    @staticmethod
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

    @staticmethod
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
