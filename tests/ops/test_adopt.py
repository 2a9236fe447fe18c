"""`platform adopt`'s decisions, on records captured from the real CLI (tests/ops/records): which
objects a stack's plan names, the import file that puts each under the program's own URN, and
the inputs recorded for an imported object, cut to what the program sets. The whole command
runs against the local cluster in tests/e2e/test_adopt.py."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pulumi import automation as auto

from infra.secrets import SECRET_SIGNATURE, SIGNATURE_KEY
from ops.errors import OpsError
from ops.operator.adoption import (
    KubernetesObject,
    Plan,
    PlannedResource,
    import_file,
    project,
    recorded_inputs,
    trim_imported_inputs,
)

RECORDS = Path(__file__).parent / "records"
STACK = "api-gateway.production"
NAMESPACE = "platform-production"
HAND_MADE = {"ServiceAccount", "ConfigMap", "Secret", "Service", "Deployment"}


@pytest.fixture(scope="module")
def plan() -> Plan:
    collected = Plan()
    for line in (RECORDS / f"{STACK}.adopt-plan-events.jsonl").read_text().splitlines():
        if line.strip():
            collected(auto.EngineEvent.from_json(json.loads(line)))
    return collected


@pytest.fixture(scope="module")
def hand_made(plan: Plan) -> list[PlannedResource]:
    return [r for r in plan.to_create() if r.inputs["kind"] in HAND_MADE]


@pytest.fixture
def imported() -> dict:
    return json.loads((RECORDS / f"{STACK}.imported.json").read_text())["deployment"]


def test_the_plan_names_every_object_the_go_service_would_create(plan: Plan):
    objects = {r.name: KubernetesObject.of(r).describe() for r in plan.to_create()}
    assert objects == {
        "api-gateway-service-account": f"ServiceAccount {NAMESPACE}/api-gateway",
        "api-gateway-files": f"ConfigMap {NAMESPACE}/api-gateway-files",
        "api-gateway-env": f"Secret {NAMESPACE}/api-gateway-env",
        "api-gateway-service": f"Service {NAMESPACE}/api-gateway",
        "api-gateway-deployment": f"Deployment {NAMESPACE}/api-gateway",
        "api-gateway-network-policy": f"NetworkPolicy {NAMESPACE}/api-gateway",
        "api-gateway-pdb": f"PodDisruptionBudget {NAMESPACE}/api-gateway",
        "api-gateway-hpa": f"HorizontalPodAutoscaler {NAMESPACE}/api-gateway",
    }
    assert plan.foreign() == []


def test_the_import_file_puts_each_object_under_the_urn_the_program_gives_it(plan, hand_made):
    entries = import_file(plan, hand_made)
    by_handle = {e["name"]: e for e in entries}

    def urn_of(entry: dict) -> str:  # as `pulumi import` derives it: the parent's type chain
        types, parent = [entry["type"]], entry.get("parent")
        while parent:
            types.insert(0, by_handle[parent]["type"])
            parent = by_handle[parent].get("parent")
        return f"urn:pulumi:{STACK}::platform::{'$'.join(types)}::{entry['logicalName']}"

    planned = {r.urn for r in plan.resources}
    assert all(urn_of(e) in planned for e in entries)
    resources = [e for e in entries if "id" in e]
    assert sorted(e["id"] for e in resources) == sorted(
        f"{NAMESPACE}/{KubernetesObject.of(r).name}" for r in hand_made)
    (provider,) = [e for e in entries if e["type"] == "pulumi:providers:kubernetes"]
    assert provider["logicalName"] == "k8s-production"
    assert provider["inputs"]["context"] == "platform-production"
    assert "__internal" not in provider["inputs"] and "id" not in provider
    (component,) = [e for e in entries if e.get("component")]
    assert component["type"] == "platform:go_service:GoService" and "parent" not in component
    for entry in resources:
        assert entry["parent"] == component["name"] and entry["provider"] == provider["name"]
        assert entry["version"] == provider["inputs"]["version"]
    # Providers and components come before what references them.
    assert entries.index(provider) < entries.index(component) < min(map(entries.index, resources))


def test_an_imported_service_is_recorded_without_the_fields_only_the_cluster_sets(
        plan, hand_made, imported):
    (service,) = [r for r in imported["resources"] if r["type"] == "kubernetes:core/v1:Service"]
    assert "clusterIP" in service["inputs"]["spec"]  # what `pulumi import` records
    assert trim_imported_inputs(imported, plan, hand_made) == len(hand_made)
    spec = service["inputs"]["spec"]
    assert "clusterIP" not in spec and "sessionAffinity" not in spec
    assert spec["ports"] == service["outputs"]["spec"]["ports"]  # live values, not the program's
    assert service["outputs"]["__inputs"] == service["inputs"]  # what the provider diffs against


def test_labels_are_recorded_as_they_run_and_only_those_the_program_sets(plan, hand_made, imported):
    trim_imported_inputs(imported, plan, hand_made)
    (deployment,) = [r for r in imported["resources"] if r["type"] == "kubernetes:apps/v1:Deployment"]
    live = deployment["outputs"]["metadata"]["labels"]
    assert live["team"] == "gateway"  # set by hand, not by the program: not the stack's to record
    assert deployment["inputs"]["metadata"]["labels"] == {"app.kubernetes.io/name": "api-gateway"}
    assert "replicas" not in deployment["inputs"]["spec"]  # the autoscaler's, not the program's
    assert deployment["inputs"]["spec"]["template"] == project(
        deployment["outputs"]["spec"]["template"],
        plan.by_urn(deployment["urn"]).inputs["spec"]["template"])


def test_a_secret_stays_encrypted_as_the_engine_wrote_it(plan, hand_made, imported):
    (secret,) = [r for r in imported["resources"] if r["type"] == "kubernetes:core/v1:Secret"]
    ciphertext = copy.deepcopy(secret["outputs"]["data"])
    assert ciphertext[SIGNATURE_KEY] == SECRET_SIGNATURE
    trim_imported_inputs(imported, plan, hand_made)
    assert secret["inputs"]["data"] == ciphertext


def test_resources_not_adopted_are_left_as_they_are(plan, hand_made, imported):
    before = copy.deepcopy(imported)
    trim_imported_inputs(imported, plan, [r for r in hand_made if r.inputs["kind"] != "ConfigMap"])
    (config_map,) = [r for r in imported["resources"] if r["type"] == "kubernetes:core/v1:ConfigMap"]
    (was,) = [r for r in before["resources"] if r["type"] == "kubernetes:core/v1:ConfigMap"]
    assert config_map == was


@pytest.mark.parametrize("live, shape, recorded", [
    ({"a": 1, "b": 2}, {"a": 0}, {"a": 1}),
    ({"a": 1}, {"a": 0, "c": 0}, {"a": 1}),
    ({"l": [{"x": 1, "y": 2}]}, {"l": [{"x": 0}]}, {"l": [{"x": 1}]}),
    ({"l": [1, 2, 3]}, {"l": [0]}, {"l": [1, 2, 3]}),  # another length: the update shows it
    ({"s": {SIGNATURE_KEY: SECRET_SIGNATURE, "ciphertext": "c"}}, {"s": {"k": 0}},
     {"s": {SIGNATURE_KEY: SECRET_SIGNATURE, "ciphertext": "c"}}),
    ({"v": {"k": 1}}, {"v": "text"}, {"v": {"k": 1}}),  # another type: kept whole
])
def test_a_live_value_is_cut_to_the_shape_the_program_sets(live, shape, recorded):
    assert project(live, shape) == recorded


def test_the_providers_bookkeeping_is_not_recorded_as_inputs():
    outputs = {"apiVersion": "v1", "kind": "ConfigMap", "__fieldManager": "pulumi", "data": {"a": "1"}}
    assert recorded_inputs(outputs, {"apiVersion": "", "kind": "", "__fieldManager": "", "data": {}}) == {
        "apiVersion": "v1", "kind": "ConfigMap", "data": {}}


def planned(kind: str = "ConfigMap", metadata: dict | None = None, type_: str = "") -> PlannedResource:
    return PlannedResource(urn=f"urn:pulumi:s::platform::{type_ or 'kubernetes:core/v1:' + kind}::x",
                           type=type_ or f"kubernetes:core/v1:{kind}", op="create", custom=True,
                           parent=None, provider=None,
                           inputs={"apiVersion": "v1", "kind": kind, "metadata": metadata or {}})


def test_an_object_the_program_names_at_random_cannot_be_adopted():
    with pytest.raises(OpsError, match="no fixed name"):
        KubernetesObject.of(planned(metadata={"namespace": "n"}))


def test_a_cluster_scoped_object_is_imported_by_its_name_alone():
    from ops.operator.adoption import import_id

    assert import_id(KubernetesObject.of(planned("Namespace", {"name": "platform-staging"}))) == "platform-staging"


def test_resources_of_another_cloud_are_named_as_foreign():
    worker = planned(type_="cloudflare:index/worker:Worker")
    assert Plan([worker, planned(metadata={"name": "a"})]).foreign() == [worker]
