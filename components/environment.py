"""Environment: the namespace and guardrails every component of one environment shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
from pulumi_kubernetes.core.v1 import (
    LimitRange,
    LimitRangeItemArgs,
    LimitRangeSpecArgs,
    Namespace,
    ResourceQuota,
    ResourceQuotaSpecArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicy,
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)

from components.kubernetes_objects import FORCE_APPLY, MANAGED_BY

DEFAULT_DENY = "default-deny"
ALLOW_DNS = "allow-dns-egress"


@dataclass(frozen=True)
class EnvironmentArgs:
    namespace: str
    pod_security_version: str  # e.g. "v1.34": pin the policy so cluster upgrades don't move it
    quota: Mapping[str, str]  # ResourceQuota hard limits, e.g. {"requests.cpu": "4", "pods": "50"}
    container_defaults: Mapping[str, Mapping[str, str]]  # {"default": {...}, "defaultRequest": {...}}
    dns_namespace: str = "kube-system"
    dns_pod_labels: Mapping[str, str] = field(default_factory=lambda: {"k8s-app": "kube-dns"})
    labels: Mapping[str, str] = field(default_factory=dict)


class Environment(pulumi.ComponentResource):
    """Namespace (Pod Security `restricted`), default-deny in and out, DNS egress, quotas."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: EnvironmentArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:environment:Environment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {**MANAGED_BY, **args.labels}
        pod_security = {f"pod-security.kubernetes.io/{mode}{suffix}": value
                        for mode in ("enforce", "audit", "warn")
                        for suffix, value in (("", "restricted"),
                                              ("-version", args.pod_security_version))}

        ns = Namespace(f"{name}-namespace", metadata=ObjectMetaArgs(
            name=args.namespace, labels={**labels, **pod_security}, annotations=FORCE_APPLY),
            opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])

        def meta(object_name: str) -> ObjectMetaArgs:
            return ObjectMetaArgs(name=object_name, namespace=args.namespace, labels=labels,
                                  annotations=FORCE_APPLY)

        # An empty pod selector with both policy types and no rules denies all traffic.
        NetworkPolicy(f"{name}-{DEFAULT_DENY}", metadata=meta(DEFAULT_DENY),
                      spec=NetworkPolicySpecArgs(pod_selector=LabelSelectorArgs(),
                                                 policy_types=["Ingress", "Egress"]),
                      opts=in_ns)
        dns_ports = [NetworkPolicyPortArgs(protocol=p, port=53) for p in ("UDP", "TCP")]
        NetworkPolicy(f"{name}-{ALLOW_DNS}", metadata=meta(ALLOW_DNS), spec=NetworkPolicySpecArgs(
            pod_selector=LabelSelectorArgs(),
            policy_types=["Egress"],
            egress=[NetworkPolicyEgressRuleArgs(
                to=[NetworkPolicyPeerArgs(
                    namespace_selector=LabelSelectorArgs(
                        match_labels={"kubernetes.io/metadata.name": args.dns_namespace}),
                    pod_selector=LabelSelectorArgs(match_labels=dict(args.dns_pod_labels)))],
                ports=dns_ports)]),
            opts=in_ns)
        ResourceQuota(f"{name}-quota", metadata=meta("quota"),
                      spec=ResourceQuotaSpecArgs(hard=dict(args.quota)), opts=in_ns)
        LimitRange(f"{name}-container-defaults", metadata=meta("container-defaults"),
                   spec=LimitRangeSpecArgs(limits=[LimitRangeItemArgs(
                       type="Container",
                       default=dict(args.container_defaults["default"]),
                       default_request=dict(args.container_defaults["defaultRequest"]))]),
                   opts=in_ns)

        self.namespace = ns.metadata.name
        self.register_outputs({"namespace": self.namespace})
