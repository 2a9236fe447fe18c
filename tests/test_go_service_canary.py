"""A Go service's canary release (`platform:canary.release`) under Pulumi's mocks: beside the
stable Deployment, the new version's own Deployment, Service and ingress-nginx canary Ingress,
its pods told apart by their track, covered by the service's NetworkPolicy, PodDisruptionBudget
and scrape; without a release, none of them."""
from __future__ import annotations

import kubernetes_validate
import pytest

from components.go_service import CANARY_ANNOTATION, CANARY_WEIGHT_ANNOTATION
from offline.mock_engine import unwrap_secrets
from infra.project import PROJECT_ROOT
from offline.render import Renderer, normalize
from policy.pack import POLICIES

from tests.policy.engine_view import pack_violations, stack_resources
from tests.test_render import KUBERNETES_VERSION


STACK = "api-gateway.staging"
NEW_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "7c" * 32
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"


def objects(run, type_: str) -> dict[str, dict]:
    """The objects of a type by their Kubernetes name."""
    found = [normalize(unwrap_secrets(r.inputs)) for r in run.of_type(type_)]
    return {o["metadata"]["name"]: o for o in found}


def release(weight: int = 10, **canary) -> dict:
    return {"release": {"image": NEW_IMAGE, "weight": weight}, **canary}


@pytest.fixture(scope="module")
def with_release():
    return Renderer(root=PROJECT_ROOT, overrides={STACK: {"platform:canary": release(10)}}).run(STACK)


def refusal(failing_run, **overrides) -> str:
    error, registered = failing_run(STACK, **overrides)
    assert registered == [], "nothing is registered before the config is valid"
    return str(error)


def test_without_a_release_only_the_stable_objects_exist(repo_renderer):
    run = repo_renderer.run(STACK)
    assert set(objects(run, DEPLOYMENT)) == {"api-gateway"}
    assert set(objects(run, SERVICE)) == {"api-gateway"}
    (ingress,) = objects(run, INGRESS).values()
    assert CANARY_ANNOTATION not in ingress["metadata"].get("annotations", {})


def test_a_release_adds_its_deployment_service_and_canary_ingress(with_release):
    deployments, services = objects(with_release, DEPLOYMENT), objects(with_release, SERVICE)
    ingresses = objects(with_release, INGRESS)
    assert set(deployments) == set(services) == set(ingresses) == {"api-gateway", "api-gateway-canary"}
    stable, canary = deployments["api-gateway"]["spec"], deployments["api-gateway-canary"]["spec"]
    stable_pod, canary_pod = stable["template"], canary["template"]
    # The same pod spec, the new image.
    assert canary_pod["spec"]["containers"][0]["image"] == NEW_IMAGE
    assert stable_pod["spec"]["containers"][0]["image"] != NEW_IMAGE
    canary_container = dict(canary_pod["spec"]["containers"][0], image=None)
    assert canary_container == dict(stable_pod["spec"]["containers"][0], image=None)
    # Told apart by their track; the stable selector as it always was (immutable).
    assert stable["selector"]["matchLabels"] == {"app.kubernetes.io/name": "api-gateway"}
    assert stable_pod["metadata"]["labels"]["track"] == "stable"
    assert canary_pod["metadata"]["labels"]["track"] == "canary"
    assert canary["selector"]["matchLabels"] == {"app.kubernetes.io/name": "api-gateway",
                                                 "track": "canary"}
    assert canary["replicas"] == 2  # the stack's min_replicas: no autoscaler of its own
    assert services["api-gateway"]["spec"]["selector"]["track"] == "stable"
    assert services["api-gateway-canary"]["spec"]["selector"] == canary["selector"]["matchLabels"]


def test_the_canary_ingress_splits_the_same_host_and_path_by_its_weight(with_release):
    ingresses = objects(with_release, INGRESS)
    stable, canary = ingresses["api-gateway"], ingresses["api-gateway-canary"]
    annotations = canary["metadata"]["annotations"]
    assert annotations[CANARY_ANNOTATION] == "true"
    assert annotations[CANARY_WEIGHT_ANNOTATION] == "10"
    assert CANARY_ANNOTATION not in stable["metadata"]["annotations"]
    assert canary["spec"]["rules"][0]["host"] == stable["spec"]["rules"][0]["host"]
    (path,) = canary["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == stable["spec"]["rules"][0]["http"]["paths"][0]["path"]
    assert path["backend"]["service"]["name"] == "api-gateway-canary"
    # The stable Ingress' certificate serves the host: no second one is asked of cert-manager.
    assert canary["spec"]["tls"] == stable["spec"]["tls"]
    assert "cert-manager.io/cluster-issuer" not in annotations


def test_the_policy_a_budget_and_the_scrape_cover_the_canary_pods(with_release):
    pod_labels = objects(with_release, DEPLOYMENT)["api-gateway-canary"]["spec"]["template"][
        "metadata"]["labels"]
    (policy,) = objects(with_release, POLICY).values()
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    # A budget each: the stable pods' never counts the canary's (a drain could otherwise leave
    # the stable Service without a pod).
    budgets = objects(with_release, PDB)
    assert budgets["api-gateway-canary"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert budgets["api-gateway"]["spec"]["selector"]["matchLabels"]["track"] == "stable"
    assert budgets["api-gateway-canary"]["spec"]["minAvailable"] == 1 < 2  # below its replicas
    (hpa,) = objects(with_release, HPA).values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "api-gateway"  # the stable one only
    (monitor,) = objects(with_release, MONITOR).values()
    service_labels = objects(with_release, SERVICE)["api-gateway-canary"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    # Both Services' series under the service's job, each with its pods' track: what the
    # alerts count (both) and what the analysis reads (`track="canary"`).
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert service_labels["app.kubernetes.io/name"] == "api-gateway"
    assert monitor["spec"]["podTargetLabels"] == ["track"]


def test_a_selector_of_its_own_labels_the_canary_pods_and_their_series(run_stack_with):
    run = run_stack_with(STACK, canary=release(50, selector={"version": "next"}))
    canary = objects(run, DEPLOYMENT)["api-gateway-canary"]["spec"]
    assert canary["template"]["metadata"]["labels"]["version"] == "next"
    (monitor,) = objects(run, MONITOR).values()
    assert monitor["spec"]["podTargetLabels"] == ["track", "version"]
    ingress = objects(run, INGRESS)["api-gateway-canary"]
    assert ingress["metadata"]["annotations"][CANARY_WEIGHT_ANNOTATION] == "50"


@pytest.mark.parametrize("canary, key, reason", [
    (release(101), "platform:canary.release.weight", "less than or equal to 100"),
    (release(-1), "platform:canary.release.weight", "greater than or equal to 0"),
    ({"release": {"image": "registry.example.com/platform/api-gateway:v2", "weight": 10}},
     "platform:canary.release.image", "is not an image pinned by digest"),
    ({"release": {"image": NEW_IMAGE, "weight": 10, "size": 1}},
     "platform:canary.release.size", "unknown key"),
    (release(10, selector={"track": "stable"}), "platform:canary.selector",
     "is the label of the stable pods"),
], ids=["weight-above-100", "weight-below-0", "image-not-pinned", "unknown-key", "stable-selector"])
def test_a_bad_release_is_one_message_naming_stack_key_and_reason(failing_run, canary, key, reason):
    message = refusal(failing_run, canary=canary)
    assert f"stack '{STACK}'" in message
    assert f"{key}: " in message and reason in message, message


def test_a_release_of_the_stable_image_is_refused(failing_run, repo_renderer):
    stable = repo_renderer.run(STACK).outputs["image"]
    message = refusal(failing_run, canary={"release": {"image": stable, "weight": 10}})
    assert "platform:canary.release.image: " in message and "nothing to roll out" in message


def test_a_release_needs_a_public_host_and_a_pinned_stable_image(failing_run):
    message = refusal(failing_run, canary=release(10), expose=None)
    assert "platform:canary.release: needs expose" in message


def test_every_manifest_with_a_release_validates_strictly_and_passes_the_pack(with_release):
    kubernetes = [r for r in with_release.resources if r.type.startswith("kubernetes:")
                  and not r.type.startswith("kubernetes:monitoring.coreos.com/")]
    assert {"api-gateway-canary"} <= {r.inputs["metadata"]["name"] for r in kubernetes}
    for resource in kubernetes:
        kubernetes_validate.validate(normalize(unwrap_secrets(resource.inputs)),
                                     KUBERNETES_VERSION, strict=True)
    assert pack_violations(POLICIES, stack_resources(with_release)) == []


def test_the_whole_policy_pack_passes_a_stack_with_a_release_and_counts_its_pods(with_release):
    from policy.pack import POLICIES
    from tests.policy.engine_view import pack_violations, stack_resources

    resources = stack_resources(with_release)
    assert pack_violations(POLICIES, resources) == []
    # The canary's pods count against the environment's quota beside the stable maximum.
    (quota_rule,) = [p for p in POLICIES if p.name == "hpa-within-environment-quota"]
    outputs = next(r for r in resources if r.resource_type == "pulumi:pulumi:Stack").props
    pods = int(outputs["environment_quota"]["pods"])
    hpa = next(r for r in resources if r.resource_type.endswith("HorizontalPodAutoscaler"))
    canary = next(r for r in resources if r.resource_type.endswith(":Deployment")
                  and r.props["metadata"]["name"].endswith("-canary"))
    canary.props["spec"]["replicas"] = pods - hpa.props["spec"]["maxReplicas"] + 1
    found = pack_violations([quota_rule], resources)
    assert found and all("the stack's pods at their most" in v for v in found), found
    assert any(f"would be {pods + 1}; the environment quota allows {pods}" in v for v in found), found
