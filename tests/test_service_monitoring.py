"""Monitoring of a Go service, from its environment's settings and its own config: a
ServiceMonitor, a PrometheusRule and a Grafana dashboard ConfigMap when the environment says
monitoring is on (none when off), valid against the Prometheus operator's own CRD schemas, and
/metrics reachable by the environment's Prometheus pods only."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from offline.render import Renderer, normalize

from tests.conftest import Stack, kind_of, single, stacks_of_kind

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
def test_dashboard_shows_traffic_objectives_saturation_dependencies_and_replicas(repo_renderer,
                                                                               stack):
    """The panels every service gets, and a dependency's panels exactly when the stack's own
    config declares that dependency (outbound calls, a circuit breaker)."""
    (config_map,) = dashboards(repo_renderer.run(stack))
    (document,) = config_map["data"].values()
    dashboard = json.loads(document)
    panels = {p["title"]: p for p in dashboard["panels"] if p["type"] != "row"}
    titles = " | ".join(panels)
    for expected in ("Request rate", "Error ratio", "Latency",
                     "Replicas against the autoscaler's bounds",
                     "CPU against the autoscaler's target", "Memory against the limit",
                     "Container restarts", "Requests in flight"):
        assert expected in titles, expected
    monitoring = Stack(stack).configured("monitoring", {})
    calls = monitoring.get("outbound_calls", [])
    for callee in calls:
        assert f"{callee} calls by outcome" in titles and f"{callee} call latency" in titles, callee
    assert len([t for t in panels if " calls by outcome" in t]) == len(calls)
    assert ("Circuit breaker" in titles) == bool(monitoring.get("circuit_breaker"))
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert ("Dependencies" in rows) == bool(calls or monitoring.get("circuit_breaker"))
    slo = Stack(stack).configured("slo", {})
    error_panel = next(p for t, p in panels.items() if t.startswith("Error ratio"))
    steps = error_panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    budget = 1 - slo.get("availability", 99.9) / 100  # the budget is the red line
    assert steps[-1]["value"] == pytest.approx(budget)
    cpu = next(p for t, p in panels.items() if t.startswith("CPU against"))
    assert cpu["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == pytest.approx(
        Stack(stack).configured("scaling", {}).get("target_cpu_utilization", 70) / 100)
    latency = next(p for t, p in panels.items() if t.startswith("Latency"))
    assert latency["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == \
        pytest.approx(slo.get("latency_p99_ms", 1000) / 1000)
    for panel in panels.values():
        for target in panel["targets"]:
            assert 'namespace="' in target["expr"], panel["title"]


# What Prometheus would hold of api-gateway.staging after 20 minutes of healthy traffic (no
# 5xx at all): two pods using 0.125 of their 0.25 CPU request, 64 and 96 MiB of a 128 MiB limit,
# one restarting once a minute, three requests in flight on one.
HEALTHY_SERIES = [
    ('gateway_http_requests_total{namespace="platform-staging",job="api-gateway",'
     'route="/v1/modules",method="GET",code="200",pod="api-gateway-1"}', "0+60x20"),
    *[(f'container_cpu_usage_seconds_total{{namespace="platform-staging",pod="{pod}",'
       f'container="api-gateway"}}', "0+7.5x20") for pod in ("api-gateway-1", "api-gateway-2")],
    *[(f'kube_pod_container_resource_requests{{namespace="platform-staging",pod="{pod}",'
       f'container="api-gateway",resource="cpu",unit="core"}}', "0.25x20")
      for pod in ("api-gateway-1", "api-gateway-2")],
    *[(f'container_memory_working_set_bytes{{namespace="platform-staging",pod="{pod}",'
       f'container="api-gateway"}}', f"{mib * 2**20}x20")
      for pod, mib in (("api-gateway-1", 64), ("api-gateway-2", 96))],
    *[(f'kube_pod_container_resource_limits{{namespace="platform-staging",pod="{pod}",'
       f'container="api-gateway",resource="memory",unit="byte"}}', f"{128 * 2**20}x20")
      for pod in ("api-gateway-1", "api-gateway-2")],
    ('kube_pod_container_status_restarts_total{namespace="platform-staging",'
     'pod="api-gateway-1",container="api-gateway"}', "0+1x20"),
    ('gateway_http_requests_in_flight{namespace="platform-staging",job="api-gateway",'
     'pod="api-gateway-1"}', "3x20"),
]
# What each panel must show of them (Grafana's $__rate_interval taken as 2m); promtool compares
# exactly, so the numbers are ones binary floating point holds exactly.
EXPECTED_PANELS = {
    "Error ratio": [("{}", 0)],
    "CPU against the autoscaler's target": [("{}", 0.5)],
    "Memory against the limit": [('{pod="api-gateway-1"}', 0.5), ('{pod="api-gateway-2"}', 0.75)],
    "Container restarts": [('{pod="api-gateway-1"}', 2)],
    "Requests in flight": [('{pod="api-gateway-1"}', 3)],
}


def test_saturation_and_error_panels_show_numbers_promtool_computes(repo_renderer,
                                                                    monitoring_tools, tmp_path):
    """Each panel's query, evaluated by promtool over healthy series: the error ratio is 0 (not
    "No data" for want of a 5xx series), the saturation panels what the series say."""
    (config_map,) = dashboards(repo_renderer.run("api-gateway.staging"))
    panels = json.loads(next(iter(config_map["data"].values())))["panels"]
    checks = []
    for prefix, samples in EXPECTED_PANELS.items():
        (panel,) = [p for p in panels if p["title"].startswith(prefix)]
        (target,) = panel["targets"]
        checks.append({"expr": target["expr"].replace("$__rate_interval", "2m"),
                       "eval_time": "15m",
                       "exp_samples": [{"labels": labels, "value": value}
                                       for labels, value in samples]})
    (tmp_path / "no-rules.yaml").write_text("groups: []\n")  # promtool wants a rule file
    (tmp_path / "panels.test.yaml").write_text(yaml.safe_dump({
        "rule_files": ["no-rules.yaml"], "evaluation_interval": "1m", "tests": [{
            "interval": "1m",
            "input_series": [{"series": name, "values": values}
                             for name, values in HEALTHY_SERIES],
            "promql_expr_test": checks}]}, sort_keys=False))
    result = subprocess.run([str(monitoring_tools.promtool), "test", "rules", "panels.test.yaml"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


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
