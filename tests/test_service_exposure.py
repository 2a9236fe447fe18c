"""Exposure of a Go service: `platform:expose` makes an Ingress of the environment's class for a
host under the environment's base domain; the ingress controller is admitted by the
NetworkPolicy from the same environment settings; the Worker's gateway URL is derived from the
same base domain, never typed per environment."""
from __future__ import annotations

import json

import kubernetes_validate
import pytest

from infra.project import PROJECT_ROOT
from offline.mock_engine import unwrap_secrets
from offline.render import Renderer, normalize
from policy.pack import POLICIES

from tests.conftest import single, stacks_of, stacks_of_kind
from tests.policy.engine_view import pack_violations, stack_resources

GO_STACKS = stacks_of_kind("go-service")
WORKER_STACKS = stacks_of_kind("cloudflare-worker")
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SERVICE = "kubernetes:core/v1:Service"


def env_of(stack: str) -> str:
    return stack.split(".")[1]


def inputs(run, type_) -> dict:
    return normalize(single(run, type_).inputs)


def admitted(run) -> list[dict]:
    return [peer for rule in inputs(run, POLICY)["spec"].get("ingress") or []
            for peer in rule["from"]]


def controller_peer(namespace: str, labels: dict) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "podSelector": {"matchLabels": labels}}


@pytest.mark.parametrize("stack", GO_STACKS)
def test_exposed_service_gets_an_ingress_for_its_host_under_the_base_domain(repo_renderer, stack):
    environment = repo_renderer.run(env_of(stack)).outputs
    run = repo_renderer.run(stack)
    ingress = inputs(run, INGRESS)
    host = f"api.{environment['base_domain']}"
    assert ingress["spec"]["ingressClassName"] == environment["ingress"]["class_name"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == host
    (path,) = rule["http"]["paths"]
    service = inputs(run, SERVICE)
    assert path["pathType"] == "Prefix" and path["path"] == "/v1"
    assert path["backend"]["service"] == {"name": service["metadata"]["name"],
                                          "port": {"number": service["spec"]["ports"][0]["port"]}}
    assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": "api-gateway-tls"}]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert run.outputs["public_url"] == f"https://{host}/v1"


def test_an_existing_tls_secret_is_used_without_cert_manager(run_stack_with):
    run = run_stack_with("api-gateway.staging", expose={"subdomain": "edge.api", "path": "/v1",
                                                        "tls_secret": "wildcard-tls"})
    ingress = inputs(run, INGRESS)
    assert ingress["spec"]["tls"] == [{"hosts": ["edge.api.staging.example.com"],
                                       "secretName": "wildcard-tls"}]
    assert "cert-manager.io/cluster-issuer" not in ingress["metadata"]["annotations"]


@pytest.mark.parametrize("stack", GO_STACKS)
def test_the_ingress_controller_is_admitted_from_the_environments_settings(repo_renderer, stack):
    settings = repo_renderer.run(env_of(stack)).outputs["ingress"]
    peer = controller_peer(settings["namespace"], settings["pod_labels"])
    assert peer in admitted(repo_renderer.run(stack))
    moved = Renderer(overrides={env_of(stack): {"platform:ingress": {
        "class_name": "traefik", "namespace": "edge", "pod_labels": {"app": "traefik"}}}})
    run = moved.run(stack)
    assert controller_peer("edge", {"app": "traefik"}) in admitted(run)
    assert peer not in admitted(run)
    assert inputs(run, INGRESS)["spec"]["ingressClassName"] == "traefik"


@pytest.mark.parametrize("stack", GO_STACKS)
def test_no_stack_file_lists_the_ingress_controller_as_a_caller_by_hand(repo_renderer, stack):
    from infra.stack_files import read_stack_config
    callers = json.loads(read_stack_config(stack).config.get("platform:callers", "[]"))
    controller = repo_renderer.run(env_of(stack)).outputs["ingress"]["namespace"]
    assert controller not in [c["namespace"] for c in callers]


@pytest.mark.parametrize("stack", GO_STACKS)
def test_a_service_that_is_not_exposed_has_no_ingress_and_admits_no_controller(
        repo_renderer, run_stack_with, stack):
    controller = repo_renderer.run(env_of(stack)).outputs["ingress"]["namespace"]
    run = run_stack_with(stack, expose=None)
    assert run.of_type(INGRESS) == []
    assert controller not in [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                              for p in admitted(run)]
    assert "public_url" not in run.outputs


@pytest.mark.parametrize("path", ["/", "/metrics", "/metrics/"])
def test_exposing_a_path_that_covers_the_metrics_is_refused(failing_run, path):
    error, registered = failing_run("api-gateway.staging", expose={
        "subdomain": "api", "path": path, "cluster_issuer": "letsencrypt"})
    assert error.problems == [(
        "platform:expose.path",
        f"{path} would publish the metrics path /metrics through the ingress controller: "
        "expose the API's own prefix, e.g. /v1")]
    assert not [r for r in registered if r.custom]


def test_a_prefix_that_only_shares_letters_with_the_metrics_path_is_allowed(run_stack_with):
    run = run_stack_with("api-gateway.staging", expose={"subdomain": "api", "path": "/met",
                                                        "cluster_issuer": "letsencrypt"})
    assert inputs(run, INGRESS)["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/met"


@pytest.mark.parametrize("certificates,reason", [
    ({}, "set exactly one of tls_secret or cluster_issuer: a public host is served over TLS only"),
    ({"tls_secret": "a", "cluster_issuer": "b"},
     "set exactly one of tls_secret or cluster_issuer: a public host is served over TLS only"),
])
def test_a_public_host_needs_exactly_one_certificate_source(failing_run, certificates, reason):
    error, _ = failing_run("api-gateway.staging",
                           expose={"subdomain": "api", "path": "/v1", **certificates})
    assert error.problems == [("platform:expose.tls_secret", reason)]


def test_a_subdomain_must_be_a_relative_name(failing_run):
    error, _ = failing_run("api-gateway.staging", expose={
        "subdomain": "https://api", "path": "/v1", "cluster_issuer": "letsencrypt"})
    assert [key for key, _ in error.problems] == ["platform:expose.subdomain"]


# -- the Worker's gateway URL ------------------------------------------------------------------


def gateway_url(run) -> str:
    version = unwrap_secrets(single(run, "cloudflare:index/workerVersion:WorkerVersion").inputs)
    (binding,) = [b for b in version["bindings"] if b["name"] == "GATEWAY_URL"]
    assert binding["type"] == "plain_text"
    return binding["text"]


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_the_worker_calls_the_host_the_gateway_exposes_in_its_environment(repo_renderer, stack):
    gateway = repo_renderer.run(f"api-gateway.{env_of(stack)}")
    assert gateway_url(repo_renderer.run(stack)) == f"https://{gateway.outputs['public_host']}"


def test_the_worker_gateway_url_follows_the_environments_base_domain():
    renderer = Renderer(overrides={"staging": {"platform:base_domain": "next.example.com"}})
    assert gateway_url(renderer.run("ai-worker.staging")) == "https://api.next.example.com"


def test_a_url_binding_may_not_repeat_a_plain_binding(failing_run):
    error, _ = failing_run("ai-worker.staging", vars={"GATEWAY_URL": "https://x.example.com"})
    assert ("platform:url_vars", "binding 'GATEWAY_URL' is also declared in vars") in error.problems


KUBERNETES_VERSION = (PROJECT_ROOT / "tools" / "kubernetes-version").read_text().strip()
SOURCE_RANGES = ["203.0.113.0/24", "2001:db8::/32"]


@pytest.mark.parametrize("stack", stacks_of("go-service"), ids=str)
def test_a_service_is_cluster_ip_and_admits_no_address_block_by_default(renderers, stack):
    run = renderers.run(stack)
    spec = inputs(run, SERVICE)["spec"]
    assert spec["type"] == "ClusterIP"
    assert "externalTrafficPolicy" not in spec and "loadBalancerSourceRanges" not in spec
    assert not [peer for peer in admitted(run) if "ipBlock" in peer]


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
@pytest.mark.parametrize("stack", stacks_of("go-service"), ids=str)
def test_a_service_reached_from_outside_admits_exactly_its_source_ranges(
        run_stack_with, monkeypatch, stack, service_type):
    run = run_stack_with(stack, service_type=service_type, service_source_ranges=SOURCE_RANGES)
    service, policy = inputs(run, SERVICE), inputs(run, POLICY)
    assert service["spec"]["type"] == service_type
    # The client's own address reaches the pod, so the ipBlocks below judge the real source.
    assert service["spec"]["externalTrafficPolicy"] == "Local"
    assert service["spec"].get("loadBalancerSourceRanges") == (
        SOURCE_RANGES if service_type == "LoadBalancer" else None)
    port = service["spec"]["ports"][0]["port"]
    outside = [(rule["ports"], peer["ipBlock"]) for rule in policy["spec"]["ingress"]
               for peer in rule["from"] if "ipBlock" in peer]
    assert outside == [([{"protocol": "TCP", "port": port}], {"cidr": block})
                       for block in SOURCE_RANGES]
    for document in (service, policy):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    # The policy pack's ClusterIP rule reads the same key: the stack asked for this type.
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(
        {"platform:service_type": service_type,
         "platform:service_source_ranges": json.dumps(SOURCE_RANGES)}))
    assert pack_violations(POLICIES, stack_resources(run)) == []
    monkeypatch.delenv("PULUMI_CONFIG")
    assert [v for v in pack_violations(POLICIES, stack_resources(run))
            if "platform:service_type" in v] != []
