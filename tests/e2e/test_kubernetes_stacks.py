"""The operator's path, for real: every Kubernetes stack through the Pulumi CLI against the
local cluster, with a local file backend and a passphrase secrets provider.

The module's fixture deploys every Kubernetes stack once (init from the stack files, up:
environments, then services, rolled out); each test starts from that deployment and leaves it
as it found it (a change is undone before the test ends), so any test runs alone or in any
order: read back, compare with the render, preview, roll out, scale, roll back, drift, Pod
Security, secrets in state. Destroying runs on a deployment of its own.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tools.cluster import Cluster
from tools.cluster.kube import ApiError, Kube, path_for

from tests.e2e.conftest import FIGURES, deploy_stacks, rolled_out
from tests.e2e.harness import (
    ENVIRONMENTS,
    KUBERNETES_STACKS,
    SERVICES,
    Workspace,
    namespace_of,
    rendered_objects,
    stack_config,
)
from tests.e2e.kube_objects import (
    RolloutWatch,
    differences,
    hpa_min,
    object_path,
    ready_pods,
    resource_versions,
)

SERVICE = "api-gateway.staging"  # the stack the single-stack steps change
NEW_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "5e" * 32


def component_of(stack: str) -> str:
    return stack.split(".")[0]


class Session:
    """What the steps share: the workspace, the cluster client, renders, timings."""

    def __init__(self, workspace: Workspace, cluster: Cluster, out: Path):
        self.ws = workspace
        self.kube: Kube = cluster.client()
        self.out = out
        self.up_seconds: dict[str, float] = {}
        self.render_seconds: dict[str, float] = {}

    def render(self, stack: str) -> list[dict]:
        started = time.monotonic()
        directory = self.ws.render(stack, self.out / "render")
        self.render_seconds.setdefault(stack, round(time.monotonic() - started, 1))
        return rendered_objects(directory)

    def up(self, stack: str, *extra: str) -> str:
        started = time.monotonic()
        result = self.ws.pulumi("up", "--yes", "--skip-preview", "-s", stack, *extra)
        self.up_seconds.setdefault(stack, round(time.monotonic() - started, 1))
        return result.stdout + result.stderr

    def preview_no_changes(self, stack: str, *extra: str):
        return self.ws.pulumi("preview", "--expect-no-changes", "-s", stack, *extra, check=False)

    def deployment(self, stack: str) -> dict:
        return self.kube.get(path_for("apps/v1", "Deployment", component_of(stack),
                                      namespace_of(stack, self.ws.root)))

    def image(self, stack: str) -> str:
        return self.deployment(stack)["spec"]["template"]["spec"]["containers"][0]["image"]

    def hpa_min(self, stack: str) -> int:
        return hpa_min(self.kube, namespace_of(stack, self.ws.root), component_of(stack))

    def rolled_out(self, stack: str) -> dict:
        return rolled_out(self.kube, stack, self.ws.root)

    def set(self, stack: str, key: str, value: str) -> None:
        self.ws.pulumi("config", "set", "--path", "-s", stack, key, value)

    @contextmanager
    def changed(self, stack: str, key: str, value: str):
        """`key` set to `value` and applied for the block; then set back and applied again, so
        the next test finds the deployment as the fixture made it."""
        before = self.ws.pulumi("config", "get", "--path", "-s", stack, key).stdout.strip()
        self.set(stack, key, value)
        try:
            yield self.up(stack)
        finally:
            self.set(stack, key, before)
            self.up(stack)
            if component_of(stack) != stack:
                self.rolled_out(stack)


@pytest.fixture(scope="module")
def session(workspace: Workspace, cluster: Cluster, tmp_path_factory) -> Session:
    s = Session(workspace, cluster, tmp_path_factory.mktemp("e2e-out"))
    yield s
    for stack, seconds in s.up_seconds.items():
        FIGURES[stack] = f"pulumi up {seconds}s, offline.render {s.render_seconds.get(stack)}s"


@pytest.fixture(scope="module")
def deployed(session: Session) -> dict[str, str]:
    """Every Kubernetes stack initialised from its stack file and up, services rolled out:
    what each `pulumi up` printed."""
    return deploy_stacks(session.ws, session.kube, KUBERNETES_STACKS, session.up, init=True)


def test_stacks_are_initialised_from_the_repository_stack_files(session: Session, deployed):
    listed = json.loads(session.ws.pulumi("stack", "ls", "--json").stdout)
    assert sorted(s["name"] for s in listed) == sorted(KUBERNETES_STACKS)


def test_environment_stacks_come_up(session: Session, deployed):
    for env in ENVIRONMENTS:
        # The provider on PATH is the plugin version the pinned SDK asks for (else the CLI
        # warns "resource plugin kubernetes is expected to have version ..." and goes on).
        assert "expected to have version" not in deployed[env], deployed[env]
        assert session.ws.outputs(env)["namespace"] == namespace_of(env)


def test_service_stacks_come_up_and_roll_out(session: Session, deployed):
    for stack in SERVICES:
        dep = session.rolled_out(stack)
        selector = dep["spec"]["selector"]["matchLabels"]
        assert len(ready_pods(session.kube, namespace_of(stack), selector)) == session.hpa_min(stack)


def test_environment_objects_are_on_the_cluster(session: Session, deployed):
    for env in ENVIRONMENTS:
        ns = namespace_of(env)
        labels = session.kube.get(f"/api/v1/namespaces/{ns}")["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels["pod-security.kubernetes.io/enforce-version"].startswith("v")
        policies = {p["metadata"]["name"]: p["spec"] for p in
                    session.kube.get(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")["items"]}
        deny = policies["default-deny"]
        assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
        assert not deny.get("ingress") and not deny.get("egress")
        dns_ports = {(p["protocol"], p["port"]) for p in policies["allow-dns-egress"]["egress"][0]["ports"]}
        assert dns_ports == {("UDP", 53), ("TCP", 53)}
        quotas = session.kube.get(f"/api/v1/namespaces/{ns}/resourcequotas")["items"]
        assert quotas and quotas[0]["spec"]["hard"]
        assert session.kube.get(f"/api/v1/namespaces/{ns}/limitranges")["items"]


def test_service_objects_are_on_the_cluster(session: Session, deployed):
    for stack in SERVICES:
        ns, name = namespace_of(stack), component_of(stack)
        for api_version, kind in [("v1", "ServiceAccount"), ("apps/v1", "Deployment"), ("v1", "Service"),
                                  ("networking.k8s.io/v1", "NetworkPolicy"), ("policy/v1", "PodDisruptionBudget"),
                                  ("autoscaling/v2", "HorizontalPodAutoscaler")]:
            obj = session.kube.get(path_for(api_version, kind, name, ns))
            assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == name, kind


MONITORING = "monitoring.coreos.com/v1"


def monitoring_objects(session: Session, stack: str) -> dict[str, bool]:
    ns, name = namespace_of(stack), component_of(stack)
    return {"ServiceMonitor": session.kube.exists(path_for(MONITORING, "ServiceMonitor", name, ns)),
            "PrometheusRule": session.kube.exists(path_for(MONITORING, "PrometheusRule", name, ns)),
            "dashboard": session.kube.exists(path_for("v1", "ConfigMap", f"{name}-dashboard", ns))}


def test_each_service_is_exposed_and_monitored_on_the_cluster(session: Session, deployed):
    for stack in SERVICES:
        ns, name = namespace_of(stack), component_of(stack)
        ingress = session.kube.get(path_for("networking.k8s.io/v1", "Ingress", name, ns))
        # Admitted by the local cluster's stand-in controller: `up` waited for that address.
        assert ingress["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1"}]
        assert ingress["spec"]["rules"][0]["host"] == session.ws.outputs(stack)["public_host"]
        assert monitoring_objects(session, stack) == {
            "ServiceMonitor": True, "PrometheusRule": True, "dashboard": True}, stack
        rule = session.kube.get(path_for(MONITORING, "PrometheusRule", name, ns))
        assert {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r} >= {
            "ErrorBudgetBurnFast", "ErrorBudgetBurnSustained", "ErrorBudgetBurnSlow"}


@pytest.mark.parametrize("stack", KUBERNETES_STACKS)
def test_the_cluster_holds_what_the_offline_render_wrote(session: Session, deployed, stack: str):
    objects = session.render(stack)
    assert objects, f"the render of {stack} has no Kubernetes object"
    problems = {}
    for expected in objects:
        actual = session.kube.get(object_path(expected))
        if expected["kind"] == "Secret" and "stringData" in expected:
            # The API server stores stringData base64-encoded under data; the values are secret.
            expected = {**expected, "data": {**expected.get("data", {}),
                                             **{k: "[secret]" for k in expected["stringData"]}}}
            del expected["stringData"]
            assert set(actual.get("data", {})) == set(expected["data"]), object_path(expected)
        found = differences(expected, actual, f"{expected['kind']}/{expected['metadata']['name']}")
        if found:
            problems[object_path(expected)] = found
    assert not problems, json.dumps(problems, indent=2)


@pytest.mark.parametrize("stack", KUBERNETES_STACKS)
def test_preview_shows_no_changes_right_after_up(session: Session, deployed, stack: str):
    result = session.preview_no_changes(stack)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_image_change_rolls_out_without_losing_ready_replicas(session: Session, deployed):
    ns, name = namespace_of(SERVICE), component_of(SERVICE)
    with RolloutWatch(session.kube, ns, name) as watch, \
            session.changed(SERVICE, "platform:image.ref", NEW_IMAGE):
        dep = session.rolled_out(SERVICE)
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == NEW_IMAGE
        pods = ready_pods(session.kube, ns, dep["spec"]["selector"]["matchLabels"])
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {NEW_IMAGE}
    assert len(watch.samples) > 10
    below = [s for s in watch.samples if s[1] < s[0] or s[2] < s[0]]
    assert not below, f"ready/available replicas fell below the desired count: {below[:5]}"


def test_an_update_plan_saved_by_preview_is_what_up_applies(session: Session, deployed, tmp_path):
    """`pulumi preview --save-plan` then `pulumi up --plan` (what a reviewer approved is what is
    applied): a stack change made after the plan is refused and applies nothing; the planned
    change applies."""
    plan, key = tmp_path / "plan.json", "platform:scaling.min_replicas"
    before = session.ws.pulumi("config", "get", "--path", "-s", SERVICE, key).stdout.strip()
    wanted = session.hpa_min(SERVICE) + 1
    session.set(SERVICE, key, str(wanted))
    try:
        started = time.monotonic()
        session.ws.pulumi("preview", "-s", SERVICE, "--save-plan", str(plan))
        FIGURES["update plan: preview --save-plan"] = f"{time.monotonic() - started:.1f}s"
        assert json.loads(plan.read_text())["resourcePlans"], "the plan names no resource"

        session.set(SERVICE, key, str(wanted + 1))  # not what the plan was made of
        refused = session.ws.pulumi("up", "--yes", "--plan", str(plan), "-s", SERVICE, check=False)
        said = refused.stdout + refused.stderr
        assert refused.returncode != 0, said
        assert "plan" in said.lower(), said
        assert session.hpa_min(SERVICE) == wanted - 1, "a change outside the plan was applied"

        session.set(SERVICE, key, str(wanted))
        started = time.monotonic()
        session.ws.pulumi("up", "--yes", "--plan", str(plan), "-s", SERVICE)
        FIGURES["update plan: up --plan"] = f"{time.monotonic() - started:.1f}s"
        assert session.hpa_min(SERVICE) == wanted
    finally:
        session.set(SERVICE, key, before)
        session.up(SERVICE)
        session.rolled_out(SERVICE)


def _desired_state(session: Session, stack: str) -> dict[str, dict]:
    """Each object of `stack` minus what the cluster writes itself (status, bookkeeping)."""
    out = {}
    for obj in session.render(stack):
        live = session.kube.get(object_path(obj))
        meta = {k: v for k, v in live["metadata"].items() if k not in ("resourceVersion", "managedFields")}
        out[object_path(obj)] = {**{k: v for k, v in live.items() if k != "status"}, "metadata": meta}
    return out


def test_scaling_one_stack_changes_only_that_stack(session: Session, deployed):
    others = [s for s in KUBERNETES_STACKS if s != SERVICE]
    env = SERVICE.split(".")[-1]
    untouched = [s for s in others if s.split(".")[-1] != env]  # the other environment
    before = {s: resource_versions(session.kube, session.render(s)) for s in untouched}
    desired_before = {s: _desired_state(session, s) for s in others}
    wanted = session.hpa_min(SERVICE) + 1

    with session.changed(SERVICE, "platform:scaling.min_replicas", str(wanted)):
        assert session.hpa_min(SERVICE) == wanted
        assert session.rolled_out(SERVICE)["spec"]["replicas"] == wanted
        for stack in others:
            result = session.preview_no_changes(stack)
            assert result.returncode == 0, f"{stack}:\n{result.stdout}{result.stderr}"
            assert _desired_state(session, stack) == desired_before[stack], stack
        for stack in untouched:
            assert resource_versions(session.kube, session.render(stack)) == before[stack], stack


def _updates(session: Session, stack: str) -> list[tuple[dict, Path]]:
    return [(record, state) for record, state in session.ws.checkpoints(stack)
            if record.get("kind") == "update" and record.get("result") == "succeeded"]


def _recorded_config(record: dict) -> dict:
    """The stack configuration an update ran with, as the stack file holds it (secrets encrypted)."""
    return dict(record.get("config") or {})


def test_roll_back_by_rolling_forward_to_an_earlier_updates_configuration(session: Session, deployed):
    """Rollback (a): the stack's configuration as recorded for an earlier update, applied with `up`."""
    stack_file = session.ws.root / f"Pulumi.{SERVICE}.yaml"
    original_text = stack_file.read_text()
    original = stack_config(SERVICE, session.ws.root)
    good, _ = _updates(session, SERVICE)[-1]  # the update that applied the stack file as it is
    session.set(SERVICE, "platform:image.ref", NEW_IMAGE)
    session.up(SERVICE)
    assert session.rolled_out(SERVICE)["spec"]["template"]["spec"]["containers"][0]["image"] == NEW_IMAGE
    try:
        document = yaml.safe_load(stack_file.read_text())
        document["config"] = _recorded_config(good)
        stack_file.write_text(yaml.safe_dump(document, sort_keys=False))

        session.up(SERVICE)

        dep = session.rolled_out(SERVICE)
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == original["platform:image"]["ref"]
        assert session.hpa_min(SERVICE) == original["platform:scaling"]["min_replicas"]
        assert session.preview_no_changes(SERVICE).returncode == 0
    finally:
        stack_file.write_text(original_text)
        session.up(SERVICE)
        session.rolled_out(SERVICE)


def _state_image(deployment: dict) -> str:
    """The image the state records for the service's Deployment (what the provider last read)."""
    for resource in deployment["deployment"]["resources"]:
        if resource["type"] == "kubernetes:apps/v1:Deployment":
            return resource["outputs"]["spec"]["template"]["spec"]["containers"][0]["image"]
    raise AssertionError("no Deployment in the state")


def test_reverting_stack_state_does_not_roll_back_the_cluster(session: Session, deployed):
    """Rollback (b): importing the state an earlier update wrote rewinds the state only.

    The cluster keeps running what the last `up` applied; `refresh` brings the state back
    in line with the cluster, and the next `up` re-applies the configuration without
    touching the workload.
    """
    with session.changed(SERVICE, "platform:image.ref", NEW_IMAGE):  # an update to go back to
        session.rolled_out(SERVICE)
    image_change = [state for record, state in _updates(session, SERVICE)
                    if _recorded_config(record).get("platform:image", {}).get("ref") == NEW_IMAGE][-1]
    before = session.deployment(SERVICE)
    live_image = before["spec"]["template"]["spec"]["containers"][0]["image"]
    assert live_image != NEW_IMAGE

    session.ws.import_checkpoint(SERVICE, image_change)
    assert _state_image(session.ws.export(SERVICE)) == NEW_IMAGE
    assert session.preview_no_changes(SERVICE).returncode != 0  # state and program now disagree

    session.ws.pulumi("refresh", "--yes", "--skip-preview", "-s", SERVICE)
    assert _state_image(session.ws.export(SERVICE)) == live_image

    session.up(SERVICE)
    after = session.deployment(SERVICE)
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == live_image
    assert after["metadata"]["generation"] == before["metadata"]["generation"]  # no rollout happened
    assert session.preview_no_changes(SERVICE).returncode == 0


DRIFT_CHECK = ("--refresh",)  # `pulumi preview --refresh --expect-no-changes`


def test_drift_a_deleted_object_is_named_and_recreated_by_up_refresh(session: Session, deployed):
    env = "staging"
    policy = path_for("networking.k8s.io/v1", "NetworkPolicy", "allow-dns-egress", namespace_of(env))
    session.kube.delete(policy)

    drift = session.preview_no_changes(env, *DRIFT_CHECK)
    assert drift.returncode != 0, "the drift check passed although a NetworkPolicy was deleted"
    assert "allow-dns-egress" in drift.stdout + drift.stderr

    session.ws.pulumi("up", "--yes", "--skip-preview", "--refresh", "-s", env)
    assert session.kube.exists(policy)
    assert session.preview_no_changes(env, *DRIFT_CHECK).returncode == 0


def test_drift_an_edited_field_is_named_and_repaired_by_up_refresh(session: Session, deployed):
    env = "staging"
    quota = path_for("v1", "ResourceQuota", "quota", namespace_of(env))
    wanted = session.kube.get(quota)["spec"]["hard"]["pods"]
    # What `kubectl edit` or `kubectl patch` does: an update under another field manager.
    session.kube.merge_patch(quota, {"spec": {"hard": {"pods": "999"}}})

    drift = session.preview_no_changes(env, *DRIFT_CHECK)
    assert drift.returncode != 0, "the drift check passed although the quota was edited on the cluster"
    assert "quota" in drift.stdout + drift.stderr

    # The objects carry `pulumi.com/patchForce`: server-side apply takes the field back.
    session.ws.pulumi("up", "--yes", "--skip-preview", "--refresh", "-s", env)
    assert session.kube.get(quota)["spec"]["hard"]["pods"] == wanted
    assert session.preview_no_changes(env, *DRIFT_CHECK).returncode == 0


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pod_security_rejects_a_privileged_pod(session: Session, deployed, env: str):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "privileged-probe"},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "securityContext": {"privileged": True}}]}}
    with pytest.raises(ApiError) as rejected:
        session.kube.create(f"/api/v1/namespaces/{namespace_of(env)}/pods", pod)
    assert rejected.value.status == 403
    assert 'violates PodSecurity "restricted' in rejected.value.reason


def test_monitoring_off_in_the_environment_leaves_a_service_without_monitoring_objects(
        session: Session, deployed):
    env, stack = SERVICE.split(".")[-1], SERVICE

    def monitoring(enabled: str) -> None:
        session.set(env, "platform:monitoring.enabled", enabled)
        session.up(env)
        session.up(stack)

    monitoring("false")
    try:
        assert monitoring_objects(session, stack) == {
            "ServiceMonitor": False, "PrometheusRule": False, "dashboard": False}
        policy = session.kube.get(path_for("networking.k8s.io/v1", "NetworkPolicy", component_of(stack),
                                           namespace_of(stack)))
        admitted = [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    for rule in policy["spec"]["ingress"] for peer in rule["from"]]
        assert "monitoring" not in admitted and admitted  # the ingress controller stays
    finally:
        monitoring("true")
    assert monitoring_objects(session, stack) == {
        "ServiceMonitor": True, "PrometheusRule": True, "dashboard": True}
    assert session.preview_no_changes(stack).returncode == 0


def test_state_holds_no_secret_in_plain_text(session: Session, deployed):
    secrets = [v for values in session.ws.secret_values.values() for v in values]
    assert secrets, "no stack of the suite has a secret: nothing to check"
    for stack in KUBERNETES_STACKS:
        assert not any(v in json.dumps(session.ws.export(stack)) for v in secrets), stack
    for path in session.ws.backend.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            assert not any(v.encode() in raw for v in secrets), path


def test_destroying_an_environment_under_live_components_is_refused(session: Session, deployed):
    env = "staging"
    component = next(s for s in SERVICES if s.endswith("." + env))
    result = session.ws.pulumi("destroy", "--yes", "--skip-preview", "-s", env, check=False)
    assert result.returncode != 0, (
        f"`pulumi destroy -s {env}` went ahead while {component} still exists; namespace "
        f"{namespace_of(env)} {'still exists' if session.kube.exists('/api/v1/namespaces/' + namespace_of(env)) else 'is gone'}")
    assert "protected" in result.stdout + result.stderr  # the engine says why, and how to undo it
    # Refused before anything went: every environment object and the component's workload.
    for path in (f"/api/v1/namespaces/{namespace_of(env)}",
                 path_for("networking.k8s.io/v1", "NetworkPolicy", "default-deny", namespace_of(env)),
                 path_for("v1", "ResourceQuota", "quota", namespace_of(env))):
        assert session.kube.exists(path), path
    assert session.deployment(component)["metadata"]["name"] == component_of(component)
    assert session.preview_no_changes(env).returncode == 0


@pytest.fixture
def own_deployment(cluster: Cluster, tmp_path) -> Session:
    """Every Kubernetes stack deployed from a workspace of its own, into namespaces of its own
    (the module's deployment stays for the other tests)."""
    ws = Workspace.create(tmp_path, cluster.kubeconfig)
    for env in ENVIRONMENTS:
        ws.use_namespace(env, f"teardown-{env}")
    own = Session(ws, cluster, tmp_path / "out")
    deploy_stacks(ws, own.kube, KUBERNETES_STACKS, own.up, init=True)
    return own


def test_destroy_components_then_environments_leaves_nothing_of_ours(own_deployment: Session):
    session, namespaces = own_deployment, {namespace_of(e, own_deployment.ws.root) for e in ENVIRONMENTS}
    assert all(session.kube.exists(f"/api/v1/namespaces/{ns}") for ns in namespaces)
    for stack in SERVICES + ENVIRONMENTS:
        if stack in ENVIRONMENTS:  # the deliberate step an environment teardown takes
            session.ws.pulumi("state", "unprotect", "--all", "--yes", "-s", stack)
        session.ws.pulumi("destroy", "--yes", "--skip-preview", "-s", stack)
    for namespace in namespaces:
        assert not session.kube.exists(f"/api/v1/namespaces/{namespace}")
    leftovers = [p["metadata"]["name"] for p in session.kube.get("/api/v1/pods")["items"]
                 if p["metadata"]["namespace"] in namespaces]
    assert leftovers == []
