"""Each Kubernetes rule of the pack on crafted resources: a compliant one passes, each way of
breaking the rule is reported with a message naming what to fix."""
from __future__ import annotations

import copy

import pytest
from pulumi_policy import StackValidationArgs

from policy import kubernetes_rules as rules
from policy.workloads import DEPLOYMENT, HPA, NETWORK_POLICY, PDB, SERVICE

from tests.policy.engine_view import policy_resource, resource_args, violations

PINNED = "registry.example.com/app@sha256:" + "0" * 64
LABELS = {"app.kubernetes.io/name": "app"}


def container(**changes) -> dict:
    probe = {"httpGet": {"path": "/healthz", "port": "http"}}
    base = {
        "name": "app", "image": PINNED,
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                      "limits": {"cpu": "1", "memory": "128Mi"}},
        "readinessProbe": probe, "livenessProbe": probe, "startupProbe": probe,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    base.update(changes)
    return base


def deployment(*containers_, namespace="ns", name="app", **pod_spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": LABELS},
            "spec": {"selector": {"matchLabels": LABELS},
                     "template": {"metadata": {"labels": LABELS},
                                  "spec": {"containers": list(containers_) or [container()],
                                           **pod_spec}}}}


def without(mapping: dict, *path: str) -> dict:
    changed = copy.deepcopy(mapping)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


def test_a_compliant_deployment_passes_every_resource_rule():
    args = resource_args(DEPLOYMENT, deployment())
    for rule in (rules.images_pinned_in_production, rules.images_pinned_outside_production,
                 rules.requests_limits_and_probes, rules.least_privilege):
        assert violations(rule, args) == []


def test_production_images_must_be_pinned_by_digest():
    args = resource_args(DEPLOYMENT, deployment(container(image="registry.example.com/app:1.2")),
                         stack="api-gateway.production")
    assert violations(rules.images_pinned_in_production, args) == [
        "container 'app' runs 'registry.example.com/app:1.2', not an image pinned by digest "
        "(repository@sha256:<64 hex digits>): a tag can be moved to other code"]
    # ... which is the advisory rule's business only outside production.
    assert violations(rules.images_pinned_outside_production, args) == []


def test_staging_images_by_tag_are_only_advised_against():
    args = resource_args(DEPLOYMENT, deployment(container(image="app:latest")),
                         stack="api-gateway.staging")
    assert violations(rules.images_pinned_in_production, args) == []
    assert len(violations(rules.images_pinned_outside_production, args)) == 1


def test_the_environment_comes_from_the_stack_name_in_the_urn():
    # An environment stack is named by its environment alone.
    args = resource_args("kubernetes:core/v1:Pod", {"spec": {"containers": [
        container(image="busybox")]}}, stack="production")
    assert len(violations(rules.images_pinned_in_production, args)) == 1


def test_init_containers_are_judged_too():
    spec = deployment(initContainers=[container(name="migrate", image="migrate:v1")])
    found = violations(rules.images_pinned_in_production, resource_args(DEPLOYMENT, spec))
    assert found and "init container 'migrate'" in found[0]


@pytest.mark.parametrize("path, message", [
    (("resources", "requests", "cpu"), "container 'app' sets no cpu requests"),
    (("resources", "limits", "memory"), "container 'app' sets no memory limits"),
    (("readinessProbe",), "container 'app' has no readinessProbe"),
    (("livenessProbe",), "container 'app' has no livenessProbe"),
    (("startupProbe",), "container 'app' has no startupProbe"),
])
def test_every_container_sets_requests_limits_and_three_probes(path, message):
    args = resource_args(DEPLOYMENT, deployment(without(container(), *path)))
    assert violations(rules.requests_limits_and_probes, args) == [message]


def test_the_rules_reach_pods_of_every_workload_kind():
    cron_job = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [without(container(), "livenessProbe")]}}}}}}
    args = resource_args("kubernetes:batch/v1:CronJob", cron_job)
    assert violations(rules.requests_limits_and_probes, args) == [
        "container 'app' has no livenessProbe"]


LEAST_PRIVILEGE = {
    "runs_as_root_unless_told_not_to": (
        lambda: deployment(without(container(), "securityContext", "runAsNonRoot")),
        "container 'app' may run as root: set runAsNonRoot: true"),
    "runs_as_user_0": (
        lambda: deployment(container(securityContext={**container()["securityContext"],
                                                      "runAsUser": 0})),
        "container 'app' runs as user 0 (root)"),
    "writable_root_filesystem": (
        lambda: deployment(without(container(), "securityContext", "readOnlyRootFilesystem")),
        "container 'app' has a writable root filesystem: set readOnlyRootFilesystem: true"),
    "privilege_escalation": (
        lambda: deployment(without(container(), "securityContext", "allowPrivilegeEscalation")),
        "container 'app' allows privilege escalation: set allowPrivilegeEscalation: false"),
    "capabilities_kept": (
        lambda: deployment(container(securityContext={**container()["securityContext"],
                                                      "capabilities": {"drop": ["NET_RAW"]}})),
        "container 'app' keeps Linux capabilities: drop ALL"),
    "capabilities_added": (
        lambda: deployment(container(securityContext={
            **container()["securityContext"],
            "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}})),
        "container 'app' adds capabilities ['NET_ADMIN']"),
    "no_seccomp_profile": (
        lambda: deployment(without(container(), "securityContext", "seccompProfile")),
        "container 'app' has no seccomp profile RuntimeDefault"),
    "privileged": (
        lambda: deployment(container(securityContext={**container()["securityContext"],
                                                      "privileged": True})),
        "container 'app' is privileged"),
    "host_network": (lambda: deployment(hostNetwork=True),
                     "the pod sets hostNetwork: it would share the node's namespace"),
    "host_pid": (lambda: deployment(hostPID=True),
                 "the pod sets hostPID: it would share the node's namespace"),
    "host_path": (lambda: deployment(volumes=[{"name": "docker",
                                               "hostPath": {"path": "/var/run"}}]),
                  "volume 'docker' is a hostPath: it would expose the node's files"),
}


@pytest.mark.parametrize("make, message", LEAST_PRIVILEGE.values(), ids=LEAST_PRIVILEGE.keys())
def test_pods_run_with_least_privilege(make, message):
    assert violations(rules.least_privilege, resource_args(DEPLOYMENT, make())) == [message]


def test_pod_level_security_settings_count_for_every_container():
    context = container()["securityContext"]
    bare = container(securityContext={k: v for k, v in context.items()
                                      if k not in ("runAsNonRoot", "seccompProfile")})
    spec = deployment(bare, securityContext={"runAsNonRoot": True,
                                             "seccompProfile": {"type": "RuntimeDefault"}})
    assert violations(rules.least_privilege, resource_args(DEPLOYMENT, spec)) == []


def service(type_: str | None) -> dict:
    spec = {"selector": LABELS, "ports": [{"port": 80}]}
    return {"metadata": {"name": "app"}, "spec": {**spec, **({"type": type_} if type_ else {})}}


def test_services_are_cluster_ip(monkeypatch):
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    assert violations(rules.services_are_cluster_ip, resource_args(SERVICE, service(None))) == []
    assert violations(rules.services_are_cluster_ip,
                      resource_args(SERVICE, service("ClusterIP"))) == []
    assert violations(rules.services_are_cluster_ip,
                      resource_args(SERVICE, service("LoadBalancer"))) == [
        "Service 'app' is of type LoadBalancer: it would be reachable from outside the "
        "cluster, and the stack config does not ask for it (platform:service_type)"]


def test_a_stack_config_may_ask_for_another_service_type(monkeypatch):
    # The engine sends the stack's config to the pack; the language host hands it over in
    # PULUMI_CONFIG, as it does to a program.
    monkeypatch.setenv("PULUMI_CONFIG", '{"platform:service_type": "NodePort"}')
    assert violations(rules.services_are_cluster_ip, resource_args(SERVICE, service("NodePort"))) == []
    assert len(violations(rules.services_are_cluster_ip,
                          resource_args(SERVICE, service("LoadBalancer")))) == 1


def network_policy(selector: dict, namespace: str = "ns") -> dict:
    return {"metadata": {"name": "np", "namespace": namespace},
            "spec": {"podSelector": selector, "policyTypes": ["Ingress", "Egress"]}}


def stack(*resources) -> StackValidationArgs:
    return StackValidationArgs([policy_resource(t, p, name=f"r{i}")
                                for i, (t, p) in enumerate(resources)])


def test_a_deployment_needs_a_network_policy_of_its_own_stack_selecting_its_pods():
    assert violations(rules.deployments_have_a_network_policy, stack(
        (DEPLOYMENT, deployment()), (NETWORK_POLICY, network_policy({"matchLabels": LABELS})),
    )) == []
    assert violations(rules.deployments_have_a_network_policy, stack(
        (DEPLOYMENT, deployment()),
        (NETWORK_POLICY, network_policy({"matchLabels": {"app.kubernetes.io/name": "other"}})),
    )) == ["Deployment 'app' has no NetworkPolicy of its own stack selecting its pods"]
    # A policy in another namespace does not isolate these pods.
    assert len(violations(rules.deployments_have_a_network_policy, stack(
        (DEPLOYMENT, deployment()), (NETWORK_POLICY, network_policy({}, namespace="other"))))) == 1
    assert len(violations(rules.deployments_have_a_network_policy,
                          stack((DEPLOYMENT, deployment())))) == 1


def test_selectors_match_expressions_as_kubernetes_does():
    selecting = {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In",
                                       "values": ["app", "api"]}]}
    missing = {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    assert violations(rules.deployments_have_a_network_policy, stack(
        (DEPLOYMENT, deployment()), (NETWORK_POLICY, network_policy(selecting)))) == []
    assert len(violations(rules.deployments_have_a_network_policy, stack(
        (DEPLOYMENT, deployment()), (NETWORK_POLICY, network_policy(missing))))) == 1


def hpa(min_replicas: float, max_replicas: float) -> dict:
    return {"metadata": {"name": "app", "namespace": "ns"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "app"},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas}}


def pdb(min_available) -> dict:
    return {"metadata": {"name": "app", "namespace": "ns"},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": LABELS}}}


@pytest.mark.parametrize("min_available, ok", [(1.0, True), (2.0, False), (3.0, False),
                                               ("50%", True), ("100%", False)])
def test_a_pdb_keeps_fewer_pods_than_the_hpa_minimum(min_available, ok):
    found = violations(rules.pdb_below_hpa_minimum, stack(
        (DEPLOYMENT, deployment()), (HPA, hpa(2.0, 4.0)), (PDB, pdb(min_available))))
    assert (found == []) == ok, found
    if not ok and min_available == 2.0:
        assert found == ["PodDisruptionBudget 'app' keeps minAvailable 2 of HPA 'app' "
                         "minReplicas 2: no pod could ever be evicted"]


QUOTA = {"pods": "10", "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "16",
         "limits.memory": "2Gi"}


def reference(quota=QUOTA) -> tuple[str, dict]:
    return ("pulumi:pulumi:StackReference",
            {"name": "organization/platform/production", "outputs": {"quota": quota}})


def test_an_hpa_within_the_quota_passes():
    assert violations(rules.hpa_within_environment_quota, stack(
        reference(), (DEPLOYMENT, deployment()), (HPA, hpa(2.0, 10.0)))) == []


def test_an_hpa_beyond_the_environment_pod_quota_is_stopped():
    assert violations(rules.hpa_within_environment_quota, stack(
        reference(), (DEPLOYMENT, deployment()), (HPA, hpa(2.0, 11.0)))) == [
        "HPA 'app' may scale to 11 pods; the environment quota allows 10",
        "HPA 'app' at maxReplicas 11 would take 1.1 of cpu requests; the environment quota "
        "allows 1"]


def canary(replicas: float) -> dict:
    """A canary release's Deployment: a fixed number of pods no HPA scales."""
    found = deployment(name="app-canary")
    found["spec"]["replicas"] = replicas
    return found


def test_a_canary_release_beside_an_hpa_within_the_quota_passes():
    assert violations(rules.hpa_within_environment_quota, stack(
        reference(), (DEPLOYMENT, deployment()), (HPA, hpa(2.0, 8.0)), (DEPLOYMENT, canary(2.0)))) == []


def test_a_canary_release_that_takes_the_stack_beyond_the_quota_is_stopped():
    # 8 stable pods at most and 3 canary pods: 11 pods, 1.1 cores of requests (0.1 each).
    assert violations(rules.hpa_within_environment_quota, stack(
        reference(), (DEPLOYMENT, deployment()), (HPA, hpa(2.0, 8.0)), (DEPLOYMENT, canary(3.0)))) == [
        "the stack's pods at their most (HPA 'app' maxReplicas 8, Deployment 'app-canary' 3 replicas) "
        "would be 11; the environment quota allows 10",
        "the stack's pods at their most (HPA 'app' maxReplicas 8, Deployment 'app-canary' 3 replicas) "
        "would take 1.1 of cpu requests; the environment quota allows 1"]


def test_an_hpa_whose_pods_outgrow_the_memory_limit_quota_is_stopped():
    # 10 pods with a 128Mi memory limit each need 1280Mi of the quota's limits.memory.
    found = violations(rules.hpa_within_environment_quota, stack(
        reference({**QUOTA, "limits.memory": "1Gi"}), (DEPLOYMENT, deployment()),
        (HPA, hpa(2.0, 10.0))))
    assert found == ["HPA 'app' at maxReplicas 10 would take 1280Mi of memory limits; the "
                     "environment quota allows 1Gi"]


def test_an_hpa_without_an_environment_quota_cannot_be_judged_and_is_stopped():
    assert violations(rules.hpa_within_environment_quota, stack(
        (DEPLOYMENT, deployment()), (HPA, hpa(2.0, 4.0)))) == [
        "HPA 'app': the stack passes on no environment quota (its `environment_quota` output, "
        "the environment stack's `quota`)"]


def test_an_hpa_is_judged_by_the_quota_its_stack_passes_on_as_an_output():
    """The engine shows a stack validation the stack's outputs, not its StackReference."""
    outputs = ("pulumi:pulumi:Stack", {"environment_quota": QUOTA, "environment": "production"})
    assert violations(rules.hpa_within_environment_quota, stack(
        outputs, (DEPLOYMENT, deployment()), (HPA, hpa(2.0, 10.0)))) == []
    assert violations(rules.hpa_within_environment_quota, stack(
        outputs, (DEPLOYMENT, deployment()), (HPA, hpa(2.0, 11.0))))[0] == \
        "HPA 'app' may scale to 11 pods; the environment quota allows 10"
