"""docs/rollouts.md, step by step: each Worker rollout step's stack config, as the document
writes it, renders under Pulumi's mocks to the traffic split the document promises, as one
change of one key; the gateway's rollout settings it describes are the ones its stacks render."""
from __future__ import annotations

import re

import pytest
import yaml

from infra.project import PROJECT_ROOT
from offline.render import Renderer, graph

from tests.conftest import Stack, single, stacks_of_kind

DOCUMENT = PROJECT_ROOT / "docs" / "rollouts.md"
STEP = re.compile(r"<!-- rollout step: (?P<step>\w+) -->\s*\n```yaml\n(?P<body>.*?)```", re.S)
WORKER = "ai-worker.staging"
NEW = "[unknown]"  # the version this update uploads: Cloudflare assigns its id
DEPLOYMENT = "cloudflare:index/workersDeployment:WorkersDeployment"


def steps() -> dict[str, dict]:
    return {m["step"]: yaml.safe_load(m["body"]) for m in STEP.finditer(DOCUMENT.read_text())}


def rendered(config: dict, type_: str) -> dict:
    """The inputs of the Worker stack's one resource of `type_`, as graph.json holds them."""
    (resource,) = [r for r in graph(Renderer(overrides={WORKER: config}).run(WORKER))["resources"]
                   if r["type"] == type_]
    return resource["inputs"]


def split(config: dict) -> list[tuple[str, int]]:
    versions = rendered(config, DEPLOYMENT)["versions"]
    return sorted(((v["versionId"], int(v["percentage"])) for v in versions), key=lambda v: -v[1])


def test_the_document_has_every_step_once():
    assert list(steps()) == ["10", "50", "100", "back"]


@pytest.mark.parametrize("step", ["10", "50", "100", "back"])
def test_each_step_is_one_change_of_the_rollout_key(step):
    assert list(steps()[step]) == ["platform:rollout"]


def test_a_rollout_goes_10_then_50_then_100_percent_and_back():
    configured = steps()
    stable = configured["10"]["platform:rollout"]["stable_version_id"]
    assert split(configured["10"]) == [(stable, 90), (NEW, 10)]
    assert sorted(split(configured["50"])) == sorted([(stable, 50), (NEW, 50)])
    assert split(configured["100"]) == [(NEW, 100)]
    assert split(configured["back"]) == [(stable, 100)]


def test_a_step_that_changes_only_the_split_keeps_the_version():
    configured = steps()
    versions = [rendered(configured[s], "cloudflare:index/workerVersion:WorkerVersion")
                for s in ("10", "50", "100")]
    assert versions[0] == versions[1] == versions[2]


@pytest.mark.parametrize("stack", stacks_of_kind("go-service"))
def test_the_gateway_rolls_out_one_pod_at_a_time_within_its_budget(repo_renderer, stack):
    run = repo_renderer.run(stack)
    strategy = single(run, "kubernetes:apps/v1:Deployment").inputs["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    scaling = Stack(stack).configured("scaling")
    pdb = single(run, "kubernetes:policy/v1:PodDisruptionBudget").inputs["spec"]
    hpa = single(run, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs["spec"]
    assert int(pdb["minAvailable"]) == int(Stack(stack).configured("min_available", 1))
    assert int(pdb["minAvailable"]) < int(hpa["minReplicas"]) == int(scaling["min_replicas"])
    assert int(hpa["maxReplicas"]) == int(scaling["max_replicas"])


def test_the_documented_canary_config_is_valid_and_is_the_default(run_stack_with):
    """The `platform:canary` block of docs/rollouts.md renders the gateway, and says what a
    stack that sets nothing gets."""
    from infra.config.canary import Canary

    block = re.search(r"<!-- canary config -->\s*\n```yaml\n(.*?)```", DOCUMENT.read_text(), re.S)
    canary = yaml.safe_load(block[1])["platform:canary"]
    run_stack_with("api-gateway.staging", canary=canary)
    assert Canary(**canary) == Canary()


def test_the_canary_release_block_adds_the_new_versions_objects_at_its_weight():
    """The `platform:canary.release` block of docs/rollouts.md renders the gateway with the
    canary Deployment, Service and Ingress the document lists, at the weight it gives."""
    block = re.search(r"<!-- canary release -->\s*\n```yaml\n(.*?)```", DOCUMENT.read_text(), re.S)
    canary = yaml.safe_load(block[1])["platform:canary"]
    run = Renderer(overrides={"api-gateway.staging": {"platform:canary": canary}}).run(
        "api-gateway.staging")
    named = {(r.type.split(":")[-1], r.inputs["metadata"]["name"]): r.inputs for r in run.resources
             if r.type.startswith("kubernetes:") and "metadata" in r.inputs}
    deployment = named[("Deployment", "api-gateway-canary")]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == canary["release"]["image"]
    assert ("Service", "api-gateway-canary") in named
    annotations = named[("Ingress", "api-gateway-canary")]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == str(canary["release"]["weight"])


def test_the_documented_worker_canary_config_is_valid_and_is_the_default():
    """The Worker's `platform:canary` block of docs/rollouts.md is what a Worker stack that sets
    nothing gets, and validates beside the rest of ai-worker.staging's config."""
    from infra.config.worker import WorkerCanary
    from ops.project import Project
    from ops.stack_config import validated

    block = re.search(r"<!-- worker canary config -->\s*\n```yaml\n(.*?)```", DOCUMENT.read_text(), re.S)
    canary = yaml.safe_load(block[1])["platform:canary"]
    assert WorkerCanary(**canary) == WorkerCanary()
    project = Project.at(PROJECT_ROOT)
    config = validated(project, project.stack(WORKER), {"platform:canary": canary})
    assert config.canary == WorkerCanary() and config.availability == "99.9"
