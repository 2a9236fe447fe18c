"""The pack's policies: each rule with its enforcement level. Built here, served by __main__.py
(constructing the PolicyPack starts its server, so tests import this module instead)."""
from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy, ResourceValidationPolicy, StackValidationPolicy

from policy import cloudflare_rules, kubernetes_rules

NAME = "platform-guardrails"
MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY

POLICIES: list[Policy] = [
    ResourceValidationPolicy(
        name="images-pinned-by-digest-in-production",
        description="Production pods run images pinned by digest.",
        validate=kubernetes_rules.images_pinned_in_production, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="images-pinned-by-digest",
        description="Pods outside production should run images pinned by digest too.",
        validate=kubernetes_rules.images_pinned_outside_production, enforcement_level=ADVISORY),
    StackValidationPolicy(
        name="images-from-allowed-registries-in-production",
        description="Production pods run images only from the registries the environment allows "
                    "(platform:images.registries).",
        validate=kubernetes_rules.images_from_allowed_registries_in_production,
        enforcement_level=MANDATORY),
    StackValidationPolicy(
        name="images-from-allowed-registries",
        description="Pods outside production should run images from the registries their "
                    "environment allows too.",
        validate=kubernetes_rules.images_from_allowed_registries, enforcement_level=ADVISORY),
    ResourceValidationPolicy(
        name="requests-limits-and-probes",
        description="Every container sets CPU and memory requests and limits, and readiness, "
                    "liveness and startup probes.",
        validate=kubernetes_rules.requests_limits_and_probes, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="least-privilege",
        description="Pods run as non-root with a read-only root filesystem, no privilege "
                    "escalation, every capability dropped and seccomp RuntimeDefault; no "
                    "hostNetwork, hostPID, hostIPC, hostPath or privileged container.",
        validate=kubernetes_rules.least_privilege, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="services-are-cluster-ip",
        description="Services are ClusterIP unless the stack config asks otherwise.",
        validate=kubernetes_rules.services_are_cluster_ip, enforcement_level=MANDATORY),
    StackValidationPolicy(
        name="deployments-have-a-network-policy",
        description="Every Deployment's pods are selected by a NetworkPolicy of its own stack.",
        validate=kubernetes_rules.deployments_have_a_network_policy,
        enforcement_level=MANDATORY),
    StackValidationPolicy(
        name="pdb-below-hpa-minimum",
        description="A PodDisruptionBudget's minAvailable is below its HPA's minReplicas.",
        validate=kubernetes_rules.pdb_below_hpa_minimum, enforcement_level=MANDATORY),
    StackValidationPolicy(
        name="hpa-within-environment-quota",
        description="An HPA at maxReplicas fits in the environment's ResourceQuota.",
        validate=kubernetes_rules.hpa_within_environment_quota, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="worker-compatibility-date",
        description="Every Worker version sets a compatibility date.",
        validate=cloudflare_rules.compatibility_date, enforcement_level=MANDATORY),
    StackValidationPolicy(
        name="worker-no-secret-in-plain-text",
        description="No Worker binding in plain text holds a secret-looking value.",
        validate=cloudflare_rules.no_secret_in_plain_text, enforcement_level=MANDATORY),
    StackValidationPolicy(
        name="worker-routes-in-environment-zone",
        description="Worker routes and custom domains live in the environment's zone.",
        validate=cloudflare_rules.routes_in_environment_zone, enforcement_level=MANDATORY),
]
