"""`platform adopt` on the local cluster: a gateway deployed by hand (its namespace, then its
ServiceAccount, ConfigMap, Secret, Service and Deployment created directly through the API
server, with labels of the team's own, no platform annotations and a fixed replica count) is
brought under `staging` and `api-gateway.staging` without replacing anything and without
restarting a pod, as docs/migration.md tells an operator to do it.

The copy of the project puts the environment in a namespace of its own, so nothing here
touches what the other end-to-end tests deploy.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from tools.cluster import Cluster
from tools.cluster.kube import path_for

from tests.e2e.conftest import FIGURES
from tests.e2e.harness import Workspace, rendered_objects
from tests.e2e.kube_objects import RolloutWatch, deployment_rolled_out, ready_pods, wait_for

NAMESPACE = "adopt-staging"
GATEWAY = "api-gateway.staging"
SELECTOR = {"app.kubernetes.io/name": "api-gateway"}
# What the team made by hand: (kind, name). The stack registers more (policy, budget, autoscaler,
# exposure, monitoring): those the next update creates.
HAND_MADE = {("ServiceAccount", "api-gateway"), ("ConfigMap", "api-gateway-files"),
             ("Secret", "api-gateway-env"), ("Service", "api-gateway"), ("Deployment", "api-gateway")}
TEAM_LABELS = {"app.kubernetes.io/name": "api-gateway", "team": "gateway"}


def by_hand(obj: dict, token: str) -> dict:
    """The object as a team would have made it: the same workload, its own labels on the
    object, none of the platform's annotations, and the Deployment's replicas set."""
    obj = json.loads(json.dumps(obj))
    obj["metadata"].pop("annotations", None)
    obj["metadata"]["labels"] = dict(TEAM_LABELS)
    if obj["kind"] == "Secret":
        obj["stringData"] = {"WORKER_API_TOKEN": token}
    if obj["kind"] == "Deployment":
        obj["spec"]["replicas"] = 2
    return obj


def stack_resources(ws: Workspace, stack: str) -> list[dict]:
    return ws.export(stack)["deployment"].get("resources") or []


def test_a_gateway_deployed_by_hand_is_adopted_without_replacing_anything_or_restarting_a_pod(
        cluster: Cluster, tmp_path: Path):
    ws = Workspace.create(tmp_path, cluster.kubeconfig)
    environment_file = ws.root / "Pulumi.staging.yaml"
    environment_file.write_text(environment_file.read_text().replace(
        "platform:namespace: platform-staging", f"platform:namespace: {NAMESPACE}"))
    kube = cluster.client()
    for stack in ("staging", GATEWAY):
        ws.init_stack(stack)
    (token,) = ws.secret_values[GATEWAY]

    # By hand: the namespace, then the gateway's objects, as they run before the platform.
    kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": NAMESPACE, "labels": {"team": "gateway"}}})
    ws.render("staging", tmp_path / "render")
    rendered = ws.render(GATEWAY, tmp_path / "render")
    objects = {(o["kind"], o["metadata"]["name"]): o for o in rendered_objects(rendered)}
    assert HAND_MADE < set(objects)
    assert all(o["metadata"]["namespace"] == NAMESPACE for o in objects.values())
    # The stack's name for each object (its URN's last part), from the render's graph.
    names = {(r["inputs"]["kind"], r["inputs"]["metadata"]["name"]): r["name"]
             for r in json.loads((rendered / "graph.json").read_text())["resources"]
             if r["type"].startswith("kubernetes:")}
    missing = set(objects) - HAND_MADE
    for kind, name in sorted(HAND_MADE):
        wrong = "a token nobody told the stack" if kind == "Secret" else token
        obj = by_hand(objects[(kind, name)], wrong)
        kube.create(path_for(obj["apiVersion"], kind, None, NAMESPACE), obj)
    pods = wait_for("the hand-made gateway's two pods", lambda: (
        found if len(found := ready_pods(kube, NAMESPACE, SELECTOR)) == 2 else None))
    uids = sorted(p["metadata"]["uid"] for p in pods)

    # The environment first: its namespace is adopted, the rest created.
    adopted = ws.platform("adopt", "staging", "--yes").stdout
    assert f"found   Namespace {NAMESPACE} -> staging-namespace" in adopted, adopted
    ws.platform("up", "staging", "--yes")
    namespace = kube.get(f"/api/v1/namespaces/{NAMESPACE}")["metadata"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace["labels"]["team"] == "gateway"  # not the stack's: left as it was

    # A dry run lists what it found and changes nothing.
    listed = ws.platform("adopt", GATEWAY, "--dry-run").stdout
    for kind, name in HAND_MADE:
        assert f"found   {kind} {NAMESPACE}/{name} -> {names[(kind, name)]}" in listed, listed
    for kind, name in missing:
        assert f"missing {kind} {NAMESPACE}/{name} -> {names[(kind, name)]}" in listed, listed
    assert f"5 object(s) to adopt, {len(missing)} the next update creates" in listed
    assert stack_resources(ws, GATEWAY) == []

    # A Secret holding another value than the stack's would be replaced: refused and undone.
    refused = ws.platform("adopt", GATEWAY, "--yes", check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "adopting would replace 1 object(s), so the adoption was undone" in refused.stderr
    assert "api-gateway-env (kubernetes:core/v1:Secret): data.WORKER_API_TOKEN" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert stack_resources(ws, GATEWAY) == []

    # The operator makes the running Secret hold the stack's value; now it adopts.
    kube.merge_patch(path_for("v1", "Secret", "api-gateway-env", NAMESPACE),
                     {"stringData": {"WORKER_API_TOKEN": token}})
    started = time.monotonic()
    adopted = ws.platform("adopt", GATEWAY, "--yes").stdout
    FIGURES["platform adopt api-gateway.staging"] = f"{time.monotonic() - started:.1f}s (5 objects)"
    assert "adopted 5 object(s)" in adopted, adopted
    urns = {r["urn"].rsplit("::", 1)[-1] for r in stack_resources(ws, GATEWAY)}
    assert {names[key] for key in HAND_MADE} | {"api-gateway"} <= urns

    # What the next update does: no replacement; the missing objects created; the adopted
    # ones updated in their metadata only, the pod template untouched.
    plan = json.loads(ws.platform("preview", GATEWAY, "--json").stdout)
    assert not plan["failed"], plan["errors"]
    steps = {s["name"]: s for s in plan["steps"]}
    assert not [s for s in plan["steps"] if s["replaces"]], plan["steps"]
    assert {n for n, s in steps.items() if s["op"] == "create" and "kubernetes:" in s["type"]} == {
        names[key] for key in missing}
    updated = {n: [f["path"] for f in s["fields"]] for n, s in steps.items() if s["op"] == "update"}
    assert set(updated) <= {names[key] for key in HAND_MADE}, updated
    assert "api-gateway-deployment" in updated
    assert all(path.startswith("metadata.") for paths in updated.values() for path in paths), updated

    # The update: in place, every pod kept, never fewer than two available.
    with RolloutWatch(kube, NAMESPACE, "api-gateway") as watch:
        ws.platform("up", GATEWAY, "--yes")
        # Watched until the Deployment has settled on what the update applied.
        wait_for("the adopted Deployment to settle",
                 lambda: deployment_rolled_out(kube, NAMESPACE, "api-gateway"))
    assert watch.samples and min(available for _, _, available in watch.samples) >= 2, watch.samples
    assert sorted(p["metadata"]["uid"] for p in ready_pods(kube, NAMESPACE, SELECTOR)) == uids
    deployment = kube.get(path_for("apps/v1", "Deployment", "api-gateway", NAMESPACE))["metadata"]
    assert deployment["labels"]["app.kubernetes.io/managed-by"] == "pulumi"
    assert deployment["labels"]["team"] == "gateway"
    for kind, name in missing:
        assert kube.exists(path_for(objects[(kind, name)]["apiVersion"], kind, name, NAMESPACE))
    assert ws.pulumi("preview", "--expect-no-changes", "-s", GATEWAY, check=False).returncode == 0

    # The stacks own their objects now: destroying them removes them.
    ws.platform("destroy", GATEWAY, "--yes")
    ws.platform("destroy", "staging", "--yes")
    wait_for(f"namespace {NAMESPACE} to go", lambda: not kube.exists(f"/api/v1/namespaces/{NAMESPACE}"),
             timeout=120)
    assert yaml.safe_load(environment_file.read_text())["config"]["platform:namespace"] == NAMESPACE
