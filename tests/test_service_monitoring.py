"""Monitoring of a Go service, from its environment's settings and its own config: a
ServiceMonitor, a PrometheusRule and a Grafana dashboard ConfigMap when the environment says
monitoring is on (none when off), valid against the Prometheus operator's own CRD schemas, and
/metrics reachable by the environment's Prometheus pods only."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from infra.render import Renderer, normalize

from tests.conftest import kind_of, single, stacks_of_kind

GO_STACKS = stacks_of_kind("go-service")
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SERVICE = "kubernetes:core/v1:Service"


def env_of(stack: str) -> str:
    return stack.split(".")[1]


def env_monitoring(repo_renderer, stack: str) -> dict:
    return repo_renderer.run(env_of(stack)).outputs["monitoring"]


def with_monitoring(stack: str, **settings) -> Renderer:
    """A renderer whose environment has these monitoring settings instead."""
    return Renderer(overrides={env_of(stack): {"platform:monitoring": settings}})


def inputs(run, type_) -> dict:
    return normalize(single(run, type_).inputs)


def dashboards(run) -> list[dict]:
    return [normalize(r.inputs) for r in run.of_type(CONFIG_MAP)
            if r.inputs["metadata"]["name"].endswith("-dashboard")]


# -- the CRDs' own schemas ---------------------------------------------------------------------


def closed(schema):
    """The CRD schema with unknown fields refused: the API server prunes them silently, which
    would hide a misspelt field; refusing them is what `kubectl --validate=strict` does."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def crd_validators(monitoring_tools) -> dict[tuple[str, str], jsonschema.Draft202012Validator]:
    """(apiVersion, kind) -> a strict validator of the CRD's served v1 schema."""
    validators = {}
    for path in sorted(Path(monitoring_tools.crds).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = closed(version["schema"]["openAPIV3Schema"])
            validators[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = \
                jsonschema.Draft202012Validator(schema)
    assert {kind for _, kind in validators} >= {"ServiceMonitor", "PrometheusRule"}
    return validators


def crd_errors(validators, document: dict) -> list[str]:
    validator = validators[(document["apiVersion"], document["kind"])]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


@pytest.mark.parametrize("stack", GO_STACKS)
def test_rendered_monitoring_objects_validate_against_the_operators_crd_schemas(
        rendered, crd_validators, stack):
    documents = [yaml.safe_load(p.read_text()) for p in sorted((rendered / stack).glob("*.yaml"))]
    custom = [d for d in documents if d["apiVersion"].startswith("monitoring.coreos.com/")]
    assert sorted(d["kind"] for d in custom) == ["PrometheusRule", "ServiceMonitor"]
    for document in custom:
        assert crd_errors(crd_validators, document) == [], document["kind"]


def test_crd_validation_rejects_a_misspelt_field_and_a_wrong_type(rendered, crd_validators):
    monitor = yaml.safe_load((rendered / "api-gateway.staging" /
                              "servicemonitor-api-gateway.yaml").read_text())
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    assert crd_errors(crd_validators, monitor)
    rule = yaml.safe_load((rendered / "api-gateway.staging" /
                           "prometheusrule-api-gateway.yaml").read_text())
    rule["spec"]["groups"][0]["rules"][0]["expr"] = {"not": "a string"}
    assert crd_errors(crd_validators, rule)


# -- what is created, and from which settings --------------------------------------------------


@pytest.mark.parametrize("stack", GO_STACKS)
def test_monitoring_on_creates_a_service_monitor_a_rule_and_a_dashboard(repo_renderer, stack):
    assert env_monitoring(repo_renderer, stack)["enabled"] is True
    run = repo_renderer.run(stack)
    settings = env_monitoring(repo_renderer, stack)
    for type_ in (SERVICE_MONITOR, PROMETHEUS_RULE):
        labels = inputs(run, type_)["metadata"]["labels"]
        assert settings["resource_labels"].items() <= labels.items(), type_
    (dashboard,) = dashboards(run)
    assert settings["dashboard_labels"].items() <= dashboard["metadata"]["labels"].items()
    assert run.outputs["monitoring"] is True


@pytest.mark.parametrize("stack", GO_STACKS)
def test_monitoring_off_creates_none_and_admits_no_prometheus(stack):
    run = with_monitoring(stack, enabled=False).run(stack)
    assert not run.of_type(SERVICE_MONITOR) and not run.of_type(PROMETHEUS_RULE)
    assert dashboards(run) == []
    namespaces = [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for rule in inputs(run, POLICY)["spec"]["ingress"] for peer in rule["from"]]
    assert "monitoring" not in namespaces
    assert run.outputs["monitoring"] is False


@pytest.mark.parametrize("stack", GO_STACKS)
def test_service_monitor_scrapes_the_services_named_port_at_the_metrics_path(repo_renderer, stack):
    run = repo_renderer.run(stack)
    monitor = inputs(run, SERVICE_MONITOR)["spec"]
    service = inputs(run, SERVICE)
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert endpoint["path"] == "/metrics" and endpoint["interval"] == "30s"


def test_prometheus_is_admitted_from_the_environments_settings_alone():
    stack = "api-gateway.staging"
    run = with_monitoring(stack, enabled=True, namespace="observability",
                          prometheus_pod_labels={"app": "prom"},
                          runbooks_url="https://runbooks.example.com").run(stack)
    peers = [peer for rule in inputs(run, POLICY)["spec"]["ingress"] for peer in rule["from"]]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
            "podSelector": {"matchLabels": {"app": "prom"}}} in peers
    assert not any(p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] ==
                   "monitoring" for p in peers)
    alert = inputs(run, PROMETHEUS_RULE)["spec"]["groups"][0]["rules"][-1]
    assert alert["annotations"]["runbook_url"].startswith("https://runbooks.example.com/")


def test_monitoring_on_without_a_runbook_location_is_refused(failing_run):
    error, registered = failing_run("staging", monitoring={"enabled": True})
    assert error.problems == [("platform:monitoring.runbooks_url",
                               "required when monitoring is enabled: every alert links its runbook")]
    assert not [r for r in registered if r.custom]


# -- the dashboard -----------------------------------------------------------------------------


@pytest.mark.parametrize("stack", GO_STACKS)
def test_dashboard_shows_traffic_objectives_dependencies_and_replicas(repo_renderer, stack):
    (config_map,) = dashboards(repo_renderer.run(stack))
    (document,) = config_map["data"].values()
    dashboard = json.loads(document)
    panels = {p["title"]: p for p in dashboard["panels"] if p["type"] != "row"}
    titles = " | ".join(panels)
    for expected in ("Request rate", "Error ratio", "Latency", "worker calls by outcome",
                     "Circuit breaker", "Replicas against the autoscaler's bounds"):
        assert expected in titles, expected
    error_panel = next(p for t, p in panels.items() if t.startswith("Error ratio"))
    steps = error_panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == pytest.approx(0.001)  # 99.9 %: the budget is the red line
    latency = next(p for t, p in panels.items() if t.startswith("Latency"))
    assert latency["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.5
    for panel in panels.values():
        for target in panel["targets"]:
            assert 'namespace="' in target["expr"], panel["title"]


def test_a_dashboard_has_no_dependency_panels_for_a_service_without_dependencies(run_stack_with):
    run = run_stack_with("api-gateway.staging", monitoring={"metric_prefix": "gateway"})
    (config_map,) = dashboards(run)
    titles = [p["title"] for p in json.loads(next(iter(config_map["data"].values())))["panels"]]
    assert "Dependencies" not in titles
    assert not any("worker" in t or "breaker" in t.lower() for t in titles)


def test_only_go_service_stacks_carry_monitoring_objects(repo_renderer):
    from tests.conftest import ALL_STACKS
    for stack in ALL_STACKS:
        if kind_of(stack) != "go-service":
            assert not repo_renderer.run(stack).of_type(SERVICE_MONITOR), stack
