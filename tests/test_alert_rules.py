"""The alert rules of every Go-service stack, judged by Prometheus' own promtool: each stack's
rendered rules pass `promtool check rules`, and each alert fires on series that should page and
stays silent on series that should not (`promtool test rules`)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.alert_rules import STANDARD_ALERTS
from infra.mock_engine import StackRun
from infra.render import Renderer, normalize
from infra.stacks import PROJECT_ROOT

from tests.conftest import single, stacks_of_kind

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
    return subprocess.run([str(tools.promtool), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


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
        "platform:slo": {"availability": 99.9, "latency_p99_ms": 500}}})
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


@pytest.mark.parametrize("stack", GO_STACKS)
def test_every_alert_has_a_severity_a_summary_and_a_runbook_that_exists(repo_renderer, stack):
    alerts = alerts_of(rule_file(repo_renderer.run(stack)))
    assert {a["alert"] for a in alerts} == set(STANDARD_ALERTS)  # the gateway has a breaker
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
