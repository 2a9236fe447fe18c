"""GoService graphs: hardening, rollout, isolation and scaling, for every go-service stack."""
from __future__ import annotations

import json

import pytest

from components.go_service import GRACE_MARGIN_SECONDS, SECRET_FILE_MODE, SECRET_FILES_DIR
from infra.mock_engine import redact, unwrap_secrets
from infra.render import normalize
from infra.stack_files import read_stack_config

from tests.conftest import custom_resources, single, stacks_of_kind

GO_STACKS = stacks_of_kind("go-service")
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SERVICE = "kubernetes:core/v1:Service"


def spec_of(run, type_):
    return normalize(unwrap_secrets(single(run, type_).inputs))


def container_of(run):
    return spec_of(run, DEPLOYMENT)["spec"]["template"]["spec"]["containers"][0]


def test_there_are_go_service_stacks_to_check():
    assert {"api-gateway.staging", "api-gateway.production"} <= set(GO_STACKS)


@pytest.mark.parametrize("stack", GO_STACKS)
def test_pods_run_non_root_read_only_without_capabilities(repo_renderer, stack):
    run = repo_renderer.run(stack)
    pod = spec_of(run, DEPLOYMENT)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container_of(run)["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("stack", GO_STACKS)
def test_no_service_account_token_unless_asked(repo_renderer, run_stack_with, stack):
    run = repo_renderer.run(stack)
    assert spec_of(run, DEPLOYMENT)["spec"]["template"]["spec"][
        "automountServiceAccountToken"] is False
    assert spec_of(run, "kubernetes:core/v1:ServiceAccount")[
        "automountServiceAccountToken"] is False
    asked = run_stack_with(stack, service_account_token=True)
    assert spec_of(asked, DEPLOYMENT)["spec"]["template"]["spec"][
        "automountServiceAccountToken"] is True


@pytest.mark.parametrize("stack", GO_STACKS)
def test_rolling_update_never_drops_below_desired_replicas(repo_renderer, stack):
    strategy = spec_of(repo_renderer.run(stack), DEPLOYMENT)["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1


@pytest.mark.parametrize("stack", GO_STACKS)
def test_the_hpa_alone_owns_the_replica_count(repo_renderer, stack):
    run = repo_renderer.run(stack)
    assert "replicas" not in spec_of(run, DEPLOYMENT)["spec"]
    hpa = spec_of(run, HPA)["spec"]
    scaling = json.loads(read_stack_config(stack).config["platform:scaling"])
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (scaling["min_replicas"],
                                                        scaling["max_replicas"])
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": spec_of(run, DEPLOYMENT)["metadata"]["name"]}
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


@pytest.mark.parametrize("stack", GO_STACKS)
def test_pdb_leaves_room_to_evict_within_the_hpa_minimum(repo_renderer, stack):
    run = repo_renderer.run(stack)
    pdb = spec_of(run, PDB)["spec"]
    assert 0 <= pdb["minAvailable"] < spec_of(run, HPA)["spec"]["minReplicas"]
    assert run.outputs["min_available"] == pdb["minAvailable"]


@pytest.mark.parametrize("stack", GO_STACKS)
def test_probes_resources_and_grace_period_are_set(repo_renderer, stack):
    run = repo_renderer.run(stack)
    container = container_of(run)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
        assert container[probe]["httpGet"]["path"].startswith("/")
    assert set(container["resources"]) == {"requests", "limits"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    drain, timeout = int(env["SHUTDOWN_DRAIN"][:-1]), int(env["SHUTDOWN_TIMEOUT"][:-1])
    pod = spec_of(run, DEPLOYMENT)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == drain + timeout + GRACE_MARGIN_SECONDS
    assert env["PORT"] == str(container["ports"][0]["containerPort"])


@pytest.mark.parametrize("stack", GO_STACKS)
def test_pods_are_spread_across_nodes(repo_renderer, stack):
    run = repo_renderer.run(stack)
    pod = spec_of(run, DEPLOYMENT)["spec"]["template"]["spec"]
    spread = pod["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == spec_of(run, DEPLOYMENT)["spec"][
        "selector"]["matchLabels"]


@pytest.mark.parametrize("stack", GO_STACKS)
def test_policy_pdb_and_service_select_exactly_the_deployments_pods(repo_renderer, stack):
    run = repo_renderer.run(stack)
    deployment = spec_of(run, DEPLOYMENT)["spec"]
    selector = deployment["selector"]["matchLabels"]
    pod_labels = deployment["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert spec_of(run, POLICY)["spec"]["podSelector"] == {"matchLabels": selector}
    assert spec_of(run, PDB)["spec"]["selector"] == {"matchLabels": selector}
    assert spec_of(run, SERVICE)["spec"]["selector"] == selector
    assert spec_of(run, SERVICE)["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("stack", GO_STACKS)
def test_only_declared_callers_reach_only_the_service_port(repo_renderer, stack):
    run = repo_renderer.run(stack)
    policy = spec_of(run, POLICY)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    port = container_of(run)["ports"][0]["containerPort"]
    for rule in policy["ingress"]:
        assert rule["from"], "an ingress rule with an empty peer list admits everyone"
        assert all(peer for peer in rule["from"])
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
        for peer in rule["from"]:
            assert "kubernetes.io/metadata.name" in peer["namespaceSelector"]["matchLabels"]


@pytest.mark.parametrize("stack", GO_STACKS)
def test_service_without_callers_admits_no_one(run_stack_with, stack):
    policy = spec_of(run_stack_with(stack, callers=[]), POLICY)["spec"]
    assert policy["ingress"] == []  # no rule at all, never `ingress: [{}]`
    assert "Ingress" in policy["policyTypes"]


@pytest.mark.parametrize("stack", GO_STACKS)
def test_egress_is_limited_to_declared_peers_and_ports(repo_renderer, run_stack_with, stack):
    policy = spec_of(repo_renderer.run(stack), POLICY)["spec"]
    for rule in policy["egress"]:
        assert rule["to"] and rule["ports"]
    peers = run_stack_with(stack, peers=[{"namespace": "data", "pod_labels": {"app": "db"},
                                          "ports": [5432]}])
    egress = spec_of(peers, POLICY)["spec"]["egress"]
    assert egress == [{"to": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "data"}}, "podSelector": {"matchLabels": {"app": "db"}}}],
        "ports": [{"port": 5432, "protocol": "TCP"}]}]


@pytest.mark.parametrize("stack", GO_STACKS)
def test_everything_lands_in_the_environment_stacks_namespace(repo_renderer, stack):
    run = repo_renderer.run(stack)
    env_stack = stack.split(".")[1]
    namespace = repo_renderer.run(env_stack).outputs["namespace"]
    for resource in custom_resources(run, "kubernetes:"):
        assert resource.inputs["metadata"]["namespace"] == namespace
    assert run.outputs["namespace"] == namespace
    reference = single(run, "pulumi:pulumi:StackReference")
    assert reference.inputs["name"] == f"organization/platform/{env_stack}"
    assert not run.of_type("kubernetes:core/v1:Namespace"), "the namespace is the env's"


@pytest.mark.parametrize("stack", GO_STACKS)
def test_secret_env_reaches_the_pod_as_read_only_files_never_as_environment(repo_renderer, stack):
    run = repo_renderer.run(stack)
    names = sorted(json.loads(read_stack_config(stack).config.get("platform:secret_env", "{}")))
    secrets = run.of_type("kubernetes:core/v1:Secret")
    if not names:
        assert secrets == [], "no secret_env, no Secret"
        return
    (secret,) = secrets
    assert secret.inputs["stringData"]["4dabf18193072939515e22adb298388d"]  # a Pulumi secret
    assert sorted(unwrap_secrets(secret.inputs["stringData"])) == names
    pod = spec_of(run, DEPLOYMENT)["spec"]["template"]["spec"]
    container = container_of(run)
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"] == {"secretName": secret.inputs["metadata"]["name"],
                                "defaultMode": SECRET_FILE_MODE,
                                "items": [{"key": n, "path": n} for n in names]}
    assert oct(SECRET_FILE_MODE) in ("0o400", "0o440") and pod["securityContext"]["fsGroup"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {"name": volume["name"], "mountPath": SECRET_FILES_DIR, "readOnly": True}
    env = {e["name"]: e for e in container["env"]}
    for name in names:
        assert env[f"{name}_FILE"] == {"name": f"{name}_FILE", "value": f"{SECRET_FILES_DIR}/{name}"}
        assert name not in env
    assert not [e for e in container["env"] if "valueFrom" in e], "no secret in the environment"


@pytest.mark.parametrize("stack", GO_STACKS)
def test_mounted_files_roll_the_pods_when_they_change(repo_renderer, run_stack_with, stack):
    run = repo_renderer.run(stack)
    before = spec_of(run, DEPLOYMENT)["spec"]["template"]["metadata"]["annotations"]
    changed = run_stack_with(stack, files={"mount_path": "/etc/api-gateway",
                                           "sources": {"catalog.json": "contract/openapi.yaml"}})
    after = spec_of(changed, DEPLOYMENT)["spec"]["template"]["metadata"]["annotations"]
    assert before != after
    mounts = container_of(run)["volumeMounts"]
    assert {"mountPath": "/etc/api-gateway", "name": "files", "readOnly": True} in mounts


@pytest.mark.parametrize("stack", GO_STACKS)
def test_outputs_tell_operators_where_the_service_is(repo_renderer, stack):
    outputs = repo_renderer.run(stack).outputs
    name, namespace, port = outputs["service"], outputs["namespace"], outputs["service_port"]
    assert outputs["service_host"] == f"{name}.{namespace}.svc.cluster.local"
    assert outputs["service_url"] == f"http://{name}.{namespace}.svc.cluster.local:{port}"
    assert outputs["image"].split("@sha256:")[1]
    assert outputs["min_replicas"] <= outputs["max_replicas"]


def test_image_can_be_built_and_pushed_from_the_services_dockerfile(run_stack_with):
    run = run_stack_with("api-gateway.staging", image={"build": {
        "context": "apps/api-gateway", "repository": "registry.example.com/platform/api-gateway"}})
    image = single(run, "docker:index/image:Image")
    assert image.inputs["imageName"].startswith("registry.example.com/platform/api-gateway:")
    assert image.inputs["build"]["dockerfile"] == "apps/api-gateway/Dockerfile"
    assert run.of_type("pulumi:providers:docker")
    # The Deployment runs the digest the push returns: unknown until `pulumi up`.
    pod = redact(single(run, DEPLOYMENT).inputs)["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "[unknown]"
    assert run.outputs["image"] == "[unknown]"
