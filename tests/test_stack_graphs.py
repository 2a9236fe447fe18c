"""Every stack file in the repository: its resource graph under Pulumi's mocks.

Stacks are discovered by glob, in the repository and in the minimal fixture project, so a new
`Pulumi.<stack>.yaml` is covered without editing tests (run `pytest --snapshot-update` once to
record its graph snapshot for review).
"""
from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from infra.secrets import is_secret_wrapper
from offline.render import graph

from tests.conftest import STACKS, custom_resources

EXPECTED_TYPES = {
    "environment": {
        "platform:environment:Environment": 1, "kubernetes:core/v1:Namespace": 1,
        "kubernetes:networking.k8s.io/v1:NetworkPolicy": 2, "kubernetes:core/v1:ResourceQuota": 1,
        "kubernetes:core/v1:LimitRange": 1, "pulumi:providers:kubernetes": 1},
    "go-service": {
        "platform:go_service:GoService": 1, "pulumi:pulumi:StackReference": 1,
        "pulumi:providers:kubernetes": 1, "kubernetes:core/v1:ServiceAccount": 1,
        "kubernetes:apps/v1:Deployment": 1, "kubernetes:core/v1:Service": 1,
        "kubernetes:networking.k8s.io/v1:NetworkPolicy": 1,
        "kubernetes:policy/v1:PodDisruptionBudget": 1,
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": 1},
    "cloudflare-worker": {
        "platform:cloudflare_worker:CloudflareWorker": 1, "pulumi:pulumi:StackReference": 1,
        "pulumi:providers:cloudflare": 1, "cloudflare:index/worker:Worker": 1,
        "cloudflare:index/workerVersion:WorkerVersion": 1,
        "cloudflare:index/workersDeployment:WorkersDeployment": 1},
}
# Present or not depending on the stack's config.
OPTIONAL_TYPES = {"kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Secret",
                  "cloudflare:index/workersRoute:WorkersRoute",
                  "cloudflare:index/workersCustomDomain:WorkersCustomDomain",
                  "cloudflare:index/workersCronTrigger:WorkersCronTrigger",
                  "cloudflare:index/workersKvNamespace:WorkersKvNamespace",
                  "pulumi:providers:docker", "docker:index/image:Image",
                  # exposure and monitoring (test_service_exposure, test_service_monitoring)
                  "platform:service_ingress:ServiceIngress", "kubernetes:networking.k8s.io/v1:Ingress",
                  "platform:service_monitoring:ServiceMonitoring",
                  "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
                  "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
                  "platform:service_dashboard:ServiceDashboard",
                  # Worker observability (test_worker_observability)
                  "platform:worker_notifications:WorkerNotifications",
                  "cloudflare:index/notificationPolicy:NotificationPolicy",
                  "cloudflare:index/logpushJob:LogpushJob"}


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_stack_graph_has_the_resources_of_its_kind(renderers, stack):
    run = renderers.run(stack)
    counts: dict[str, int] = {}
    for resource in run.resources:
        counts[resource.type] = counts.get(resource.type, 0) + 1
    expected = EXPECTED_TYPES[stack.kind]
    assert {t: n for t, n in counts.items() if t not in OPTIONAL_TYPES} == expected


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_every_resource_uses_the_stacks_explicit_provider(renderers, stack):
    run = renderers.run(stack)
    providers = [r for r in run.resources if r.type.startswith("pulumi:providers:")]
    provider_urns = {p.urn for p in providers}
    for resource in custom_resources(run):
        provider_urn = resource.provider.rsplit("::", 1)[0]  # a provider ref is "<urn>::<id>"
        assert provider_urn in provider_urns, f"{resource.type} {resource.name} has no explicit provider"


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_default_providers_are_disabled_for_every_stack(stack):
    assert stack.config["pulumi:disable-default-providers"] == '["*"]'


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_every_child_belongs_to_the_stacks_component(renderers, stack):
    run = renderers.run(stack)
    components = [r for r in run.resources if r.type.startswith("platform:")]
    (top,) = [c for c in components if c.parent.split("::")[-2] == "pulumi:pulumi:Stack"]
    # Exposure, monitoring and dashboard are parts of the service: children of its component.
    assert all(c.parent == top.urn for c in components if c is not top)
    for resource in custom_resources(run):
        assert resource.parent in {c.urn for c in components}, f"{resource.name} is not parented"


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_no_secret_reaches_a_plain_stack_output(renderers, stack):
    run = renderers.run(stack)
    assert run.secret_outputs == set()
    assert "[secret]" not in repr(run.outputs)  # the mock engine's stand-in for secret values
    for value in run.outputs.values():
        assert not is_secret_wrapper(value)


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_stack_graph_matches_its_reviewed_snapshot(renderers, snapshot_json, stack):
    assert graph(renderers.run(stack)) == snapshot_json


# Annotations that are another controller's API: cert-manager issues an exposed service's
# certificate when its Ingress names a ClusterIssuer (components/service_ingress.py).
OTHER_CONTROLLERS = {"cert-manager.io"}


@pytest.mark.parametrize("stack", [s for s in STACKS if s.kind != "cloudflare-worker"], ids=str)
def test_the_platforms_own_keys_live_under_the_environments_label_domain(renderers, stack):
    """Label and annotation keys are Kubernetes' own, Pulumi's, or under the domain the
    environment stack names: no placeholder domain is baked into the components."""
    domain = renderers.run(stack.environment).outputs["label_domain"]
    mine = []
    for resource in custom_resources(renderers.run(stack), "kubernetes:"):
        template = (resource.inputs.get("spec") or {}).get("template") or {}
        for meta in (resource.inputs["metadata"], template.get("metadata") or {}):
            for key in [*(meta.get("labels") or {}), *(meta.get("annotations") or {})]:
                prefix = key.split("/")[0] if "/" in key else None
                if prefix is None or prefix == "pulumi.com" or prefix == "kubernetes.io" \
                        or prefix.endswith(".kubernetes.io") or prefix in OTHER_CONTROLLERS:
                    continue
                assert prefix == domain, f"{resource.name}: {key}"
                mine.append(key)
    assert f"{domain}/environment" in mine


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_kubernetes_objects_force_their_fields_back_after_an_edit(renderers, stack):
    # Without it, server-side apply refuses to repair a field `kubectl edit` took over.
    for resource in custom_resources(renderers.run(stack), "kubernetes:"):
        assert resource.inputs["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"


@pytest.mark.parametrize("stack", [s for s in STACKS if s.kind != "cloudflare-worker"], ids=str)
def test_the_kubernetes_provider_records_no_kubeconfig_of_the_machine_it_ran_on(
        run_stack_with, monkeypatch, stack):
    # The SDK makes $KUBECONFIG the provider's `kubeconfig` input, kept in state: a stack
    # deployed where it is set would show an update (drift) wherever it is not, such as CI.
    # The provider process reads $KUBECONFIG (or ~/.kube/config) itself when the input is "".
    monkeypatch.setenv("KUBECONFIG", "/home/operator/.kube/platform-staging")
    run = run_stack_with(stack)
    (provider,) = [r for r in run.resources if r.type == "pulumi:providers:kubernetes"]
    assert provider.inputs.get("kubeconfig") == ""
