"""Rollouts judged by a real Prometheus: the server built from the toolchain runs on loopback
with api-gateway.staging's rendered recording and alert rules, scraping two real gateway
processes every second, the stable version (`track="stable"`) and the new one
(`track="canary"`), as the environment's Prometheus scrapes the two Deployments
(tests.rollout_fleet). Each gateway calls a Worker of its own on loopback; the new version's
fault is its Worker failing 1 call in 10 (half of the traffic calls the Worker: 5 % of the new
version's answers are 502s), with no change to the gateway's code. A traffic driver plays the
ingress controller: it sends each request to the new version with the split's current weight
(here a LoopbackSplit the loop sets directly), deterministically, in a bounded loop. The analysis is `platform rollout`'s own (`ops.rollout.stack.analyser_for` on the
stack's config), with a window suited to a test.

Cases: a good release promoted through every step; a bad one rolled back after the first
window of its first step; no traffic to the new version held, saying so; Prometheus unreachable
before the start (nothing changes) and during the rollout (rolled back, never promoted)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.config.canary import Canary
from infra.project import PROJECT_ROOT
from ops.errors import OpsError
from ops.project import Project
from ops.rollout.controller import Event, Outcome, Rollout
from ops.rollout.stack import analyser_for
from tests.conftest import free_port
from tests.rollout_fleet import (
    Fleet,
    LoopbackSplit,
    rule_file,
    running_fleet,
    under_traffic,
    wait_for,
)

STACK = "api-gateway.staging"
# A test's window: five scrapes and rule evaluations at 1 s, and enough requests at 10 %.
WINDOW = 6
MIN_REQUESTS = 20


@pytest.fixture(scope="module")
def rules(repo_renderer, tmp_path_factory) -> tuple[Path, str]:
    """The stack's rendered PrometheusRule as a rule file, and the namespace it selects."""
    return rule_file(repo_renderer.run(STACK), tmp_path_factory.mktemp("rules"))


@pytest.fixture
def fleet(request, prometheus_binary, rules, go_service_binary, tmp_path):
    """The two versions and Prometheus (tests.rollout_fleet), split by a LoopbackSplit.
    `@pytest.mark.parametrize("fleet", [N], indirect=True)`: the new version's Worker fails 1
    call in N (0: never)."""
    with running_fleet(prometheus_binary, rules, go_service_binary("api-gateway"), tmp_path,
                       LoopbackSplit(), getattr(request, "param", 0)) as fleet:
        yield fleet


def rollout(fleet: Fleet, url: str | None = None, **settings) -> tuple[Rollout, list[Event]]:
    project = Project.at(PROJECT_ROOT)
    canary = Canary(**{"window_seconds": WINDOW, "min_requests": MIN_REQUESTS, **settings})
    canary, analyser = analyser_for(project, project.stack(STACK), url or fleet.prometheus, canary)
    events: list[Event] = []
    return Rollout(STACK, canary, analyser, fleet.split, on_event=events.append), events


def first(events: list[Event], action: str, weight: int | None = None) -> Event:
    return next(e for e in events if e.action == action and weight in (None, e.weight))


def record(record_property, events: list[Event]) -> None:
    """The figures docs/rollouts.md reports, in pytest's report (`--junitxml`): each
    analysis' time asking Prometheus, the verdicts and the outcome."""
    analyses = [e.analysis for e in events if e.action == "analysis"]
    record_property("analysis_seconds", json.dumps([a["seconds"] for a in analyses]))
    record_property("verdicts", json.dumps([a["verdict"] for a in analyses]))
    record_property("outcome", events[-1].action)


def test_a_good_release_is_promoted_through_every_step(fleet, record_property):
    run, events = rollout(fleet)
    outcome = under_traffic(fleet, run.run, limit=200_000, deadline=120)
    record(record_property, events)
    assert outcome is Outcome.PROMOTED, "\n".join(e.message for e in events)
    assert fleet.split.history == [10, 50, 100]
    analyses = [e for e in events if e.action == "analysis"]
    assert [e.weight for e in analyses if e.analysis["verdict"] == "pass"] == [10, 50]
    for analysis in analyses:
        assert analysis.analysis["verdict"] in ("pass", "inconclusive"), analysis.message
    passed = [e.analysis for e in analyses if e.analysis["verdict"] == "pass"]
    assert all(a["requests"] >= MIN_REQUESTS for a in passed)
    assert all(m["value"] == 0 for a in passed for m in a["measurements"][:1])  # no 5xx at all
    assert fleet.statuses["canary"].keys() <= {200}


def test_a_good_release_at_low_traffic_is_promoted_or_held_never_rolled_back(fleet,
                                                                             record_property):
    """40 requests a second in all: at 10 % the new version serves about 24 a window, near the
    20 a verdict needs. Low traffic may delay the promotion (inconclusive windows), never fail
    a release that serves no error."""
    run, events = rollout(fleet, inconclusive_limit=5)
    outcome = under_traffic(fleet, run.run, limit=20_000, deadline=240, rate=40)
    record(record_property, events)
    verdicts = [e.analysis["verdict"] for e in events if e.action == "analysis"]
    assert outcome in (Outcome.PROMOTED, Outcome.HELD), [e.message for e in events]
    assert "fail" not in verdicts and 0 not in fleet.split.history
    if outcome is Outcome.PROMOTED:
        assert fleet.split.history == [10, 50, 100]


@pytest.mark.parametrize("fleet", [10], indirect=True)
def test_a_release_failing_5_percent_is_rolled_back_within_one_window(fleet, record_property):
    run, events = rollout(fleet)
    outcome = under_traffic(fleet, run.run, limit=200_000, deadline=120)
    assert outcome is Outcome.ROLLED_BACK, [e.message for e in events]
    assert fleet.split.history == [10, 0]  # never promoted past its first step
    (analysis,) = [e for e in events if e.action == "analysis"]
    assert analysis.analysis["verdict"] == "fail"
    assert "error ratio" in analysis.message and "is above its limit" in analysis.message
    # From the fault's first exposure (10 % of the traffic) to the rollback: one window, plus
    # what asking Prometheus took.
    exposed, rolled_back = first(events, "set-weight", 10), first(events, "rolled-back")
    took = rolled_back.elapsed - exposed.elapsed
    record(record_property, events)
    record_property("fault_to_rollback_seconds", round(took, 3))
    assert took <= WINDOW + analysis.analysis["seconds"] + 1, took
    errors = sum(n for status, n in fleet.statuses["canary"].items() if status >= 500)
    assert errors and fleet.statuses["stable"].keys() <= {200}


def test_no_traffic_to_the_new_version_holds_and_says_so(fleet):
    run, events = rollout(fleet, inconclusive_limit=2)
    outcome = under_traffic(fleet, run.run, limit=200_000, deadline=120, canary_traffic=False)
    assert outcome is Outcome.HELD
    assert fleet.split.history == [10]  # neither promoted nor rolled back
    assert fleet.sent["canary"] == 0 and fleet.sent["stable"] > 0
    held = events[-1]
    assert held.action == "held"
    assert "too little traffic to judge: 0 requests to the new version" in held.message
    assert "at least 20 needed" in held.message


def test_prometheus_unreachable_before_the_start_changes_nothing(fleet):
    closed = f"http://127.0.0.1:{free_port()}"
    run, events = rollout(fleet, url=closed)
    with pytest.raises(OpsError, match="rollout not started, nothing changed: Prometheus at "):
        run.run()
    assert fleet.split.history == [] and events == []


def test_prometheus_lost_during_the_rollout_rolls_back_and_never_promotes(fleet):
    run, events = rollout(fleet, error_limit=2)

    def lose_prometheus(event: Event) -> None:
        events.append(event)
        if event.action == "set-weight":
            fleet.prometheus_process.terminate()
            fleet.prometheus_process.wait(timeout=30)

    run.on_event = lose_prometheus
    outcome = under_traffic(fleet, run.run, limit=200_000, deadline=120)
    assert outcome is Outcome.ROLLED_BACK
    assert fleet.split.history == [10, 0]
    assert [e.analysis["verdict"] for e in events if e.action == "analysis"] == ["error", "error"]
    assert "failing safe" in events[-1].message and "cannot be queried" in events[-1].message


@pytest.mark.parametrize("fleet", [10], indirect=True)
def test_platform_rollout_check_judges_the_new_version_now_and_changes_nothing(fleet, capsys):
    """`platform rollout STACK --check --json` on the stack's own config (a 120 s window, 100
    requests): before traffic, inconclusive (exit 3); after the faulty version served enough,
    fail (exit 2), naming the error ratio."""
    from ops.cli import main

    argv = ["--project-dir", str(PROJECT_ROOT), "rollout", STACK, "--prometheus",
            fleet.prometheus, "--check", "--json"]
    assert main(argv) == 3
    before = json.loads(capsys.readouterr().out)
    assert before["verdict"] == "inconclusive"
    assert before["reasons"][0].startswith("too little traffic to judge: 0 requests")
    fleet.split.current = 100
    # Over several scrapes: a counter's first sample already holds what came before it, so a
    # burst between two scrapes would show no increase at all.
    fleet.drive(limit=400, deadline=60, rate=100).join(timeout=90)
    assert fleet.sent["canary"] == 400

    seen: list[dict] = []

    def judged() -> tuple[int, dict] | None:
        code = main(argv)
        seen.append(json.loads(capsys.readouterr().out))
        return (code, seen[-1]) if seen[-1]["verdict"] != "inconclusive" else None

    try:
        code, after = wait_for("Prometheus to have scraped the new version's 400 requests", judged)
    except AssertionError as error:
        raise AssertionError(f"{error}; last answer: {seen[-1:]}") from None
    assert (code, after["verdict"]) == (2, "fail"), after
    assert after["requests"] >= 100
    assert "error ratio" in after["reasons"][0]
    assert fleet.split.history == []
