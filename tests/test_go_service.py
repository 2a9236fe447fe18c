"""GoService graphs: hardening, rollout, isolation and scaling, for every go-service stack
(the repository's and the minimal fixture's), each held to what its own config implies."""
from __future__ import annotations

import pytest

from components.go_service import (
    GRACE_MARGIN_SECONDS,
    SECRET_FILE_MODE,
    SECRET_FILES_DIR,
    STABLE_POD_LABELS,
    GoService,
)
from infra.config.go_service import Scaling
from infra.secrets import SECRET_PLACEHOLDER, is_secret_wrapper
from offline.mock_engine import redact, unwrap_secrets
from offline.render import Renderer, normalize

from tests.conftest import FIXTURE_PROJECT, Stack, custom_resources, single, stacks_of

GO_STACKS = stacks_of("go-service")
go_stacks = pytest.mark.parametrize("stack", GO_STACKS, ids=str)
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SERVICE = "kubernetes:core/v1:Service"


def spec_of(run, type_):
    return normalize(unwrap_secrets(single(run, type_).inputs))


def container_of(run):
    return spec_of(run, DEPLOYMENT)["spec"]["template"]["spec"]["containers"][0]


def files_annotation(renderers, stack: Stack) -> str:
    """The pod annotation that rolls the pods when a mounted file changes, under the label
    domain the environment stack sets."""
    return f"{renderers.run(stack.environment).outputs['label_domain']}/files-sha256"


def pod_annotations(run) -> dict:
    return spec_of(run, DEPLOYMENT)["spec"]["template"]["metadata"].get("annotations") or {}


def test_there_are_go_service_stacks_to_check():
    assert {"api-gateway.staging", "api-gateway.production"} <= {s.name for s in GO_STACKS}
    assert Stack("billing.staging", FIXTURE_PROJECT) in GO_STACKS


@go_stacks
def test_pods_run_non_root_read_only_without_capabilities(renderers, stack):
    run = renderers.run(stack)
    pod = spec_of(run, DEPLOYMENT)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container_of(run)["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}


@go_stacks
def test_no_service_account_token_unless_asked(renderers, run_stack_with, stack):
    run = renderers.run(stack)
    assert spec_of(run, DEPLOYMENT)["spec"]["template"]["spec"][
        "automountServiceAccountToken"] is False
    assert spec_of(run, "kubernetes:core/v1:ServiceAccount")[
        "automountServiceAccountToken"] is False
    asked = run_stack_with(stack, service_account_token=True)
    assert spec_of(asked, DEPLOYMENT)["spec"]["template"]["spec"][
        "automountServiceAccountToken"] is True


@go_stacks
def test_rolling_update_never_drops_below_desired_replicas(renderers, stack):
    strategy = spec_of(renderers.run(stack), DEPLOYMENT)["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1


@go_stacks
def test_the_hpa_alone_owns_the_replica_count(renderers, stack):
    run = renderers.run(stack)
    assert "replicas" not in spec_of(run, DEPLOYMENT)["spec"]
    hpa = spec_of(run, HPA)["spec"]
    scaling = {**Scaling().model_dump(), **stack.configured("scaling", {})}  # unset: defaults
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (scaling["min_replicas"],
                                                        scaling["max_replicas"])
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == scaling[
        "target_cpu_utilization"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": spec_of(run, DEPLOYMENT)["metadata"]["name"]}
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


@go_stacks
def test_pdb_leaves_room_to_evict_within_the_hpa_minimum(renderers, stack):
    run = renderers.run(stack)
    pdb = spec_of(run, PDB)["spec"]
    assert 0 <= pdb["minAvailable"] < spec_of(run, HPA)["spec"]["minReplicas"]
    assert run.outputs["min_available"] == pdb["minAvailable"]


@go_stacks
def test_probes_resources_and_grace_period_are_set(renderers, stack):
    run = renderers.run(stack)
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


@go_stacks
def test_pods_are_spread_across_nodes(renderers, stack):
    run = renderers.run(stack)
    pod = spec_of(run, DEPLOYMENT)["spec"]["template"]["spec"]
    spread = pod["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == spec_of(run, DEPLOYMENT)["spec"][
        "selector"]["matchLabels"]


@go_stacks
def test_policy_pdb_and_service_select_exactly_the_deployments_pods(renderers, stack):
    run = renderers.run(stack)
    deployment = spec_of(run, DEPLOYMENT)["spec"]
    selector = deployment["selector"]["matchLabels"]
    pod_labels = deployment["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert spec_of(run, POLICY)["spec"]["podSelector"] == {"matchLabels": selector}
    # The budget and the Service: the stable pods only (a release's canary pods have their own).
    assert spec_of(run, PDB)["spec"]["selector"] == {"matchLabels": {**selector, **STABLE_POD_LABELS}}
    assert spec_of(run, SERVICE)["spec"]["selector"] == {**selector, **STABLE_POD_LABELS}
    assert STABLE_POD_LABELS.items() <= pod_labels.items()
    assert spec_of(run, SERVICE)["spec"]["type"] == "ClusterIP"


@go_stacks
def test_only_declared_callers_reach_only_the_service_port(renderers, stack):
    run = renderers.run(stack)
    policy = spec_of(run, POLICY)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    port = container_of(run)["ports"][0]["containerPort"]
    for rule in policy["ingress"]:
        assert rule["from"], "an ingress rule with an empty peer list admits everyone"
        assert all(peer for peer in rule["from"])
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
        for peer in rule["from"]:
            assert "kubernetes.io/metadata.name" in peer["namespaceSelector"]["matchLabels"]


@go_stacks
def test_service_without_callers_admits_no_one(stack):
    # Not exposed, and no monitoring in its environment: no caller is derived either.
    renderer = Renderer(root=stack.root, overrides={
        stack.name: {"platform:callers": [], "platform:expose": None},
        stack.env: {"platform:monitoring": {"enabled": False}}})
    policy = spec_of(renderer.run(stack.name), POLICY)["spec"]
    assert policy["ingress"] == []  # no rule at all, never `ingress: [{}]`
    assert "Ingress" in policy["policyTypes"]


@go_stacks
def test_egress_is_limited_to_declared_peers_and_ports(renderers, run_stack_with, stack):
    policy = spec_of(renderers.run(stack), POLICY)["spec"]
    for rule in policy["egress"]:
        assert rule["to"] and rule["ports"]
    peers = run_stack_with(stack, peers=[{"namespace": "data", "pod_labels": {"app": "db"},
                                          "ports": [5432]}])
    egress = spec_of(peers, POLICY)["spec"]["egress"]
    assert egress == [{"to": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "data"}}, "podSelector": {"matchLabels": {"app": "db"}}}],
        "ports": [{"port": 5432, "protocol": "TCP"}]}]


@go_stacks
def test_everything_lands_in_the_environment_stacks_namespace(renderers, stack):
    run = renderers.run(stack)
    namespace = renderers.run(stack.environment).outputs["namespace"]
    for resource in custom_resources(run, "kubernetes:"):
        assert resource.inputs["metadata"]["namespace"] == namespace
    assert run.outputs["namespace"] == namespace
    reference = single(run, "pulumi:pulumi:StackReference")
    assert reference.inputs["name"] == f"organization/platform/{stack.env}"
    assert not run.of_type("kubernetes:core/v1:Namespace"), "the namespace is the env's"


@go_stacks
def test_secret_env_reaches_the_pod_as_read_only_files_never_as_environment(renderers, stack):
    run = renderers.run(stack)
    names = sorted(stack.configured("secret_env", {}))
    secrets = run.of_type(SECRET)
    if not names:
        assert secrets == [], "no secret_env, no Secret"
        return
    (secret,) = secrets
    assert is_secret_wrapper(secret.inputs["stringData"])  # a Pulumi secret, and exactly these
    # keys; offline each value is the stack file's encrypted one, as the placeholder.
    assert unwrap_secrets(secret.inputs["stringData"]) == {n: SECRET_PLACEHOLDER for n in names}
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


@go_stacks
def test_a_secret_env_entry_becomes_a_key_of_the_secret(run_stack_with, stack):
    secret_env = {**stack.configured("secret_env", {}), "NEW_TOKEN": {"secure": "v1:abc"}}
    secret = single(run_stack_with(stack, secret_env=secret_env), SECRET)
    assert set(unwrap_secrets(secret.inputs["stringData"])) == set(secret_env)


@go_stacks
def test_configured_files_are_mounted_read_only_and_roll_the_pods(renderers, stack):
    run = renderers.run(stack)
    files = stack.configured("files")
    mounts = container_of(run)["volumeMounts"]
    # The files' ConfigMap; a dashboard ConfigMap may stand beside it (test_service_monitoring).
    config_maps = [normalize(r.inputs) for r in run.of_type(CONFIG_MAP)
                   if r.inputs["metadata"]["name"].endswith("-files")]
    if files is None:
        assert not config_maps
        assert files_annotation(renderers, stack) not in pod_annotations(run)
        assert all(m["name"] != "files" for m in mounts)
        return
    (config_map,) = config_maps
    assert set(config_map["data"]) == set(files["sources"])
    assert {"mountPath": files["mount_path"], "name": "files", "readOnly": True} in mounts
    assert pod_annotations(run)[files_annotation(renderers, stack)]


@go_stacks
def test_a_changed_file_rolls_the_pods(renderers, run_stack_with, stack):
    # Pulumi.yaml and the stack file exist in every project: two files with different bytes.
    def mounted(source: str):
        return run_stack_with(stack, files={"mount_path": "/etc/service",
                                            "sources": {"settings": source}})
    one, other = mounted("Pulumi.yaml"), mounted(stack.file.name)
    assert pod_annotations(one)[files_annotation(renderers, stack)] != pod_annotations(other)[files_annotation(renderers, stack)]
    assert files_annotation(renderers, stack) not in pod_annotations(run_stack_with(stack, files=None))


@go_stacks
def test_outputs_tell_operators_where_the_service_is(renderers, stack):
    outputs = renderers.run(stack).outputs
    name, namespace, port = outputs["service"], outputs["namespace"], outputs["service_port"]
    assert outputs["service_host"] == f"{name}.{namespace}.svc.cluster.local"
    assert outputs["service_url"] == f"http://{name}.{namespace}.svc.cluster.local:{port}"
    # A pinned reference is the image; a built one is known only after the push.
    assert outputs["image"] == stack.configured("image").get("ref", "[unknown]")
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


def kinds_under(run, component_type: str) -> set[str]:
    """The kinds (last part of the type token) of the resources parented onto the component."""
    (component,) = run.of_type(component_type)
    return {r.type.rsplit(":", 1)[-1] for r in run.resources if r.parent == component.urn}


@go_stacks
def test_the_go_service_makes_what_sits_under_it_and_its_docstring_lists_it(renderers, stack):
    run = renderers.run(stack)
    under = kinds_under(run, "platform:go_service:GoService")
    assert {"ServiceAccount", "Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget",
            "HorizontalPodAutoscaler"} <= under
    assert [kind for kind in sorted(under) if kind not in GoService.__doc__] == []
    # The stack itself holds only the service, its providers and its environment's reference:
    # every part of the service is made by the service.
    top = {r.type for r in run.resources if r.parent.split("::")[2] == "pulumi:pulumi:Stack"}
    assert {t for t in top if not t.startswith("pulumi:providers:")} == {
        "platform:go_service:GoService", "pulumi:pulumi:StackReference"}
