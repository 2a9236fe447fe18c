"""The alert rules of every Go-service stack, judged by Prometheus' own promtool: each stack's
rendered rules pass `promtool check rules`, and each alert fires on series that should page and
stays silent on series that should not (`promtool test rules`)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from components.alert_rules import STANDARD_ALERTS, service_rule_groups
from components.service_signals import ServiceSignals
from infra.config.go_service import Probes
from infra.project import PROJECT_ROOT
from offline.mock_engine import StackRun
from offline.render import Renderer, normalize

from tests.conftest import Stack, single, stacks_of_kind

GO_STACKS = stacks_of_kind("go-service")
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
UNIT_TESTS = sorted((PROJECT_ROOT / "tests" / "alerts").glob("*.test.yaml"))
RUNBOOKS = PROJECT_ROOT / "docs" / "runbooks"


def rule_file(run: StackRun) -> dict:
    """The PrometheusRule's spec, as the rule file Prometheus loads from it."""
    return normalize(single(run, PROMETHEUS_RULE).inputs)["spec"]


def alerts_of(rules: dict) -> list[dict]:
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def promtool(tools, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # A deadline, not a duration: the slow-burn unit test evaluates 30 days of series, which took
    # over 5 minutes on a machine loaded 20 times over its two cores.
    return subprocess.run([str(tools.promtool), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1200)


@pytest.mark.parametrize("stack", GO_STACKS)
def test_every_rendered_rule_file_passes_promtool_check(repo_renderer, monitoring_tools, tmp_path,
                                                         stack):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule_file(repo_renderer.run(stack)), sort_keys=False))
    result = promtool(monitoring_tools, "check", "rules", "--lint=all", "--lint-fatal", str(path),
                      cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rejects_a_broken_expression(monitoring_tools, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "broken", "rules": [
        {"alert": "Broken", "expr": "sum by (job) (rate(x[5m])"}]}]}))
    assert promtool(monitoring_tools, "check", "rules", str(path), cwd=tmp_path).returncode != 0


@pytest.fixture(scope="module")
def pinned_rules(tmp_path_factory) -> Path:
    """api-gateway.staging's rules with the objectives the unit tests were written for."""
    renderer = Renderer(overrides={"api-gateway.staging": {
        "platform:slo": {"availability": 99.9, "latency_p99_ms": 500,
                         "route_latency_p99_ms": {"/v1/ai/complete": 4500}}}})
    folder = tmp_path_factory.mktemp("promtool")
    (folder / "rules.yaml").write_text(
        yaml.safe_dump(rule_file(renderer.run("api-gateway.staging")), sort_keys=False))
    for path in UNIT_TESTS:
        shutil.copy(path, folder / path.name)
    return folder


def test_each_alert_fires_when_it_should_and_stays_silent_otherwise(pinned_rules,
                                                                    monitoring_tools):
    result = promtool(monitoring_tools, "test", "rules", *[p.name for p in UNIT_TESTS],
                      cwd=pinned_rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS)


def test_promtool_test_fails_when_an_expected_alert_does_not_fire(pinned_rules, monitoring_tools):
    # The unit tests prove something only if a wrong expectation fails: ask for a page on
    # series that are within budget.
    tests = yaml.safe_load((pinned_rules / "go_service_alerts.test.yaml").read_text())
    silent = next(t for t in tests["tests"] if t["name"].startswith("0.5 %"))
    silent["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {
        "severity": "critical", "service": "api-gateway", "namespace": "platform-staging",
        "job": "api-gateway"}}]
    (pinned_rules / "inverted.test.yaml").write_text(yaml.safe_dump({**tests, "tests": [silent]}))
    assert promtool(monitoring_tools, "test", "rules", "inverted.test.yaml",
                    cwd=pinned_rules).returncode != 0


def test_every_alert_has_a_firing_and_a_silent_case():
    cases: dict[str, set[str]] = {}
    tests = [test for path in UNIT_TESTS for test in yaml.safe_load(path.read_text())["tests"]]
    for test in tests:
        for check in test["alert_rule_test"]:
            cases.setdefault(check["alertname"], set()).add(
                "firing" if check["exp_alerts"] else "silent")
    assert {alert: {"firing", "silent"} for alert in STANDARD_ALERTS} == cases


RECORDINGS = PROJECT_ROOT / "apps" / "api-gateway" / "testdata"
SERIES = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>.*)\})?$")


def series_key(series: str) -> tuple[str, frozenset]:
    """A series' name and labels, leaving out those Prometheus adds when it scrapes."""
    match = SERIES.match(series)
    labels = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', match["labels"] or "")
    return match["name"], frozenset((k, v) for k, v in labels
                                    if k not in ("namespace", "job", "pod"))


def test_the_breaker_alert_is_tested_on_what_the_gateway_really_exports():
    # apps/api-gateway/breaker_outage_test.go records the real breaker's series through an
    # outage; each promtool test of the alert must feed one recording, unchanged.
    tests = yaml.safe_load((PROJECT_ROOT / "tests" / "alerts" /
                            "circuit_breaker.test.yaml").read_text())["tests"]
    assert tests
    for test in tests:
        (recording,) = re.findall(r"recorded: (\w+)", test["name"])
        lines = (RECORDINGS / f"{recording}.series").read_text().splitlines()
        recorded = {series_key(name): values
                    for name, values in (line.split(" ", 1) for line in lines)}
        fed = {series_key(s["series"]): s["values"] for s in test["input_series"]}
        assert fed == recorded, test["name"]


@pytest.mark.parametrize("stack", GO_STACKS)
def test_every_alert_has_a_severity_a_summary_and_a_runbook_that_exists(repo_renderer, stack):
    alerts = alerts_of(rule_file(repo_renderer.run(stack)))
    monitoring = Stack(stack).configured("monitoring", {})
    # The breaker's alert exactly when the stack says the service has one; its own alerts too.
    expected = {a for a in STANDARD_ALERTS
                if a != "CircuitBreakerOpen" or monitoring.get("circuit_breaker")}
    expected |= {a["alert"] for a in monitoring.get("alerts", [])}
    assert {a["alert"] for a in alerts} == expected
    for alert in alerts:
        assert alert["labels"]["severity"] in ("critical", "warning"), alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        url = alert["annotations"]["runbook_url"]
        assert url.endswith(f"/docs/runbooks/{alert['alert']}.md"), url
        assert (RUNBOOKS / f"{alert['alert']}.md").is_file(), f"no runbook for {alert['alert']}"


def test_burn_rate_alerts_page_and_the_slow_burn_opens_a_ticket(repo_renderer):
    severities = {a["alert"]: a["labels"]["severity"]
                  for a in alerts_of(rule_file(repo_renderer.run("api-gateway.production")))}
    assert severities["ErrorBudgetBurnFast"] == severities["ErrorBudgetBurnSustained"] == "critical"
    assert severities["ErrorBudgetBurnSlow"] == "warning"


def test_thresholds_follow_the_configured_objective(run_stack_with):
    alerts = {a["alert"]: a for a in alerts_of(rule_file(run_stack_with(
        "api-gateway.staging", slo={"availability": 99.5, "latency_p99_ms": 250})))}
    assert "> 0.072\n" in alerts["ErrorBudgetBurnFast"]["expr"]  # 14.4 x 0.5 %
    assert "> 0.03\n" in alerts["ErrorBudgetBurnSustained"]["expr"]  # 6 x 0.5 %
    assert "> 0.005\n" in alerts["ErrorBudgetBurnSlow"]["expr"]
    assert alerts["LatencyP99AboveTarget"]["expr"].endswith("> 0.25")


def test_a_route_with_an_objective_of_its_own_is_judged_by_it_alone(run_stack_with):
    alerts = [a for a in alerts_of(rule_file(run_stack_with("api-gateway.staging", slo={
        "latency_p99_ms": 500, "route_latency_p99_ms": {"/v1/ai/complete": 4500}})))
        if a["alert"] == "LatencyP99AboveTarget"]
    shared, completion = alerts
    assert shared["expr"].endswith("> 0.5") and "route" not in shared["labels"]
    assert 'route!~"(.+ )?(/v1/ai/complete)"' in shared["expr"]
    assert completion["expr"].endswith("> 4.5")
    assert 'route=~"(.+ )?(/v1/ai/complete)"' in completion["expr"]
    assert completion["labels"]["route"] == "/v1/ai/complete"


def test_a_route_objective_must_name_a_route_pattern(failing_run):
    error, _ = failing_run("api-gateway.staging", slo={"route_latency_p99_ms": {
        "v1 ai": 100, "/v1/ai/complete": 0}})
    assert sorted(error.problems) == [
        ("platform:slo.route_latency_p99_ms./v1/ai/complete",
         "Input should be greater than or equal to 1"),
        ('platform:slo.route_latency_p99_ms["v1 ai"]', "'v1 ai' is not a route pattern as the "
         "service labels its metrics, e.g. /v1/ai/complete or /v1/modules/{name}")]


def test_a_service_without_a_breaker_gets_no_breaker_alert(run_stack_with):
    run = run_stack_with("api-gateway.staging", monitoring={"metric_prefix": "gateway"})
    names = {a["alert"] for a in alerts_of(rule_file(run))}
    assert "CircuitBreakerOpen" not in names
    assert names == set(STANDARD_ALERTS) - {"CircuitBreakerOpen"}


def test_a_service_adds_an_alert_of_its_own_by_config(run_stack_with):
    run = run_stack_with("api-gateway.staging", monitoring={
        "metric_prefix": "gateway", "alerts": [{
            "alert": "ErrorBudgetBurnFast", "expr": "vector(1)", "for": "1m",
            "severity": "critical", "summary": "reuses a runbook that exists"}]})
    (custom,) = [g for g in rule_file(run)["groups"] if g["name"].endswith(".custom")]
    (alert,) = custom["rules"]
    assert alert["for"] == "1m" and alert["labels"] == {"severity": "critical",
                                                        "service": "api-gateway"}
    assert alert["annotations"]["runbook_url"].endswith("/docs/runbooks/ErrorBudgetBurnFast.md")


def test_an_alert_of_its_own_without_a_runbook_is_refused(failing_run):
    error, registered = failing_run("api-gateway.staging", monitoring={"alerts": [{
        "alert": "QueueBacklogHigh", "expr": "vector(1)", "summary": "backlog"}]})
    assert ("platform:monitoring.alerts[0].alert",
            "no runbook docs/runbooks/QueueBacklogHigh.md: every alert links one") in error.problems
    assert not [r for r in registered if r.custom]


def accepted_probe_path(path: str) -> bool:
    try:
        Probes(liveness_path=path)
    except ValidationError:
        return False
    return True


# What the config accepts as a probe path (its own model decides), not what the examples use.
PROBE_PATHS = st.from_regex(r"^/[\w./-]{0,24}$").filter(accepted_probe_path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(liveness=PROBE_PATHS, readiness=PROBE_PATHS)
@example(liveness="/live-z", readiness="/ready.json")
def test_any_probe_path_the_config_accepts_renders_rules_promtool_accepts(
        monitoring_tools, tmp_path, liveness, readiness):
    signals = ServiceSignals(service="api-gateway", namespace="platform-staging",
                             metric_prefix="gateway", availability=99.9, latency_p99_seconds=0.5,
                             excluded_paths=[liveness, readiness, liveness, "/metrics"],
                             circuit_breaker=True, outbound_calls=["worker"])
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": service_rule_groups(
        signals, "https://runbooks.example.com")}, sort_keys=False))
    result = promtool(monitoring_tools, "check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # And the matcher means what it says: the probes' routes are left out, users' are not.
    regex = json.loads(signals.user_routes.removeprefix("route!~"))
    for route in (liveness, readiness, f"GET {readiness}", "/metrics"):
        assert re.fullmatch(regex, route), (regex, route)
    assert not re.fullmatch(regex, "unmatched")
