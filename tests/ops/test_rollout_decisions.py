"""The rollout's decisions, without Prometheus: the verdict on one window's measurements
(`judge`) and the loop's answer to each sequence of verdicts (promote, roll back, hold), with a
clock and a traffic split of the test's own. What Prometheus answers for real is proven in
tests/test_rollout_prometheus.py."""
from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from components.service_signals import ServiceSignals
from infra.config.canary import Canary
from ops.errors import OpsError
from ops.rollout.analysis import (
    Analyser,
    Analysis,
    Check,
    Measurement,
    PrometheusError,
    Verdict,
    checks,
    judge,
)
from ops.rollout.controller import Outcome, Rollout

RATIO = Check("error ratio", "ratio-expr", 0.0144, "ratio")
P99 = Check("p99 latency", "p99-expr", 0.5, "s")
ROUTE_P99 = Check("p99 latency /v1/ai/complete", "route-expr", 4.5, "s", required=False)


def measured(ratio, p99=0.1, route=1.0) -> list[Measurement]:
    return [Measurement(RATIO, ratio), Measurement(P99, p99), Measurement(ROUTE_P99, route)]


def test_enough_traffic_within_every_objective_passes():
    verdict, reasons = judge(500, measured(0.002), min_requests=100, window_seconds=60)
    assert verdict is Verdict.PASS
    assert reasons[0] == "500 requests"


@pytest.mark.parametrize("requests", [None, math.nan, 0, 99])
def test_too_little_traffic_holds_and_says_so(requests):
    verdict, reasons = judge(requests, measured(0.0), min_requests=100, window_seconds=60)
    assert verdict is Verdict.INCONCLUSIVE
    assert reasons[0].startswith("too little traffic to judge: ")
    assert "at least 100 needed" in reasons[0] and "last 60s" in reasons[0]


def test_too_little_traffic_with_more_errors_than_the_minimum_sample_allows_fails():
    # 20 requests, 5 failed: at 100 requests the ratio is at least 5 % whatever follows.
    verdict, reasons = judge(20, measured(0.25), min_requests=100, window_seconds=60)
    assert verdict is Verdict.FAIL, reasons
    # 20 requests, 1 failed: 1 % of 100 would pass a 1.44 % limit; wait for the evidence.
    assert judge(20, measured(0.05), min_requests=100, window_seconds=60)[0] is Verdict.INCONCLUSIVE


@pytest.mark.parametrize("missing", [None, math.nan])
def test_an_empty_or_nan_required_result_is_inconclusive(missing):
    verdict, reasons = judge(500, measured(0.0, p99=missing), min_requests=100, window_seconds=60)
    assert verdict is Verdict.INCONCLUSIVE
    assert reasons == [f"p99 latency: Prometheus returned {'no series' if missing is None else 'NaN'}; holding"]


def test_a_route_nobody_called_is_reported_not_measured_and_does_not_hold():
    verdict, reasons = judge(500, measured(0.0, route=None), min_requests=100, window_seconds=60)
    assert verdict is Verdict.PASS
    assert "p99 latency /v1/ai/complete: no request in the window, not measured" in reasons


@pytest.mark.parametrize("ratio, p99, route", [(0.05, 0.1, 1.0), (0.0, 0.7, 1.0), (0.0, 0.1, 5.0)])
def test_any_objective_exceeded_fails_naming_it(ratio, p99, route):
    verdict, reasons = judge(500, measured(ratio, p99, route), min_requests=100, window_seconds=60)
    assert verdict is Verdict.FAIL
    assert len(reasons) == 1 and "is above its limit" in reasons[0]


def test_a_failure_beats_a_missing_result():
    verdict, _ = judge(500, measured(0.05, p99=math.nan), min_requests=100, window_seconds=60)
    assert verdict is Verdict.FAIL


def test_the_checks_are_the_alert_rules_expressions_on_the_new_versions_series():
    signals = ServiceSignals(service="api-gateway", namespace="staging", metric_prefix="api_gateway",
                             availability=99.9, latency_p99_seconds=0.5,
                             route_latency_p99_seconds={"/v1/ai/complete": 4.5},
                             excluded_paths=["/healthz", "/readyz", "/metrics"])
    requests, found = checks(signals, {"track": "canary"}, 30, 14.4)
    assert requests.startswith("sum by (namespace, job) (increase(api_gateway_http_requests_total{")
    assert all('track="canary"' in c.expr and "[30s]" in c.expr for c in found)
    assert [c.limit for c in found] == [pytest.approx(0.0144), 0.5, 4.5]
    assert [c.required for c in found] == [True, True, False]
    # The same expression as the recording rule, over the window and with the new version's label.
    from components.alert_rules import service_rule_groups
    (slo, *_) = service_rule_groups(signals, "https://runbooks")
    recorded = next(r["expr"] for r in slo["rules"] if r.get("record", "").endswith("ratio_rate5m"))
    errors, total = recorded.split("\n/\n")
    assert found[0].expr.replace(',track="canary"', "").replace("[30s]", "[5m]") == (
        f"({errors}\nor\n{total} * 0)\n/\n{total}")  # 0, not nothing, before the first 5xx


def test_steps_must_rise_to_100():
    assert Canary().steps == [10, 50, 100]
    for steps, reason in [([10, 50], "must end at 100"), ([50, 10, 100], "must rise"),
                          ([0, 100], "not a percentage"), ([100], "at least 2")]:
        with pytest.raises(ValidationError, match=reason):
            Canary(steps=steps)


# -- the loop ----------------------------------------------------------------------------------


class Split:
    def __init__(self, weight: int = 0, fail_rollback: bool = False):
        self.current = weight
        self.history: list[int] = []
        self.fail_rollback = fail_rollback

    def describe(self) -> str:
        return "the test's split"

    def weight(self) -> int:
        return self.current

    def set_weight(self, percent: int, reason: str) -> None:
        if percent == 0 and self.fail_rollback:
            raise RuntimeError("the split cannot be written")
        self.current = percent
        self.history.append(percent)


class Scripted(Analyser):
    """An analyser answering the verdicts it is given, one per analysis, and a Prometheus that
    answers the preflight unless told it is down."""

    def __init__(self, verdicts: list[Verdict], reachable: bool = True):
        self.verdicts = list(verdicts)
        self.prometheus = self
        self.reachable = reachable

    def query(self, expr: str) -> list[float]:
        if not self.reachable:
            raise PrometheusError("Prometheus at http://127.0.0.1:9 cannot be queried: refused")
        return [1.0]

    def analyse(self) -> Analysis:
        return Analysis(self.verdicts.pop(0), ["scripted"])


class Clock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def rollout(verdicts: list[Verdict], split: Split | None = None, reachable: bool = True,
            **canary) -> tuple[Rollout, Split, Clock]:
    split = split or Split()
    clock = Clock()
    analyser = Scripted(verdicts, reachable)
    return (Rollout("api-gateway.staging", Canary(window_seconds=60, **canary), analyser, split,
                    sleep=clock.sleep, clock=clock), split, clock)


P, F, I, E = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.ERROR


def test_passing_every_step_promotes_through_each_step():
    run, split, clock = rollout([P, P])
    assert run.run() is Outcome.PROMOTED
    assert split.history == [10, 50, 100]
    assert clock.slept == [60, 60]
    assert [e.action for e in run.events] == ["start", "set-weight", "analysis", "set-weight",
                                              "analysis", "promoted"]


def test_each_step_is_taken_with_the_analysis_that_passed_before_it():
    """The reason the split gets (the update's message of a Go service stack) carries the
    decision: the analysis of the step before, when there is one."""
    run, _, _ = rollout([P, P])
    run.run()
    reasons = [e.message for e in run.events if e.action in ("set-weight", "promoted")]
    assert reasons == [
        "step 1/3: the new version takes 10 % of the traffic",
        "step 2/3: the new version takes 50 % of the traffic (analysis at 10 % passed: scripted)",
        "step 3/3: every step passed its analysis: the new version is promoted and serves all "
        "traffic (analysis at 50 % passed: scripted)"]


def test_a_failure_rolls_back_at_once_with_the_default_failure_limit():
    run, split, clock = rollout([P, F])
    assert run.run() is Outcome.ROLLED_BACK
    assert split.history == [10, 50, 0]
    assert clock.now == 120  # one window per step: rolled back right after the failed window


def test_failures_within_the_limit_measure_again_and_never_promote_a_failed_window():
    run, split, _ = rollout([F, P, P], failure_limit=1)
    assert run.run() is Outcome.PROMOTED
    assert split.history == [10, 50, 100]
    run, split, _ = rollout([F, P, F], failure_limit=1)
    assert run.run() is Outcome.ROLLED_BACK
    assert split.history == [10, 50, 0]


def test_inconclusive_windows_hold_at_the_step_and_resume_there():
    run, split, _ = rollout([I, I, I])
    assert run.run() is Outcome.HELD
    assert split.history == [10]
    assert "held at 10 %, not promoted" in run.events[-1].message
    again, split, _ = rollout([P, P], split=split)
    assert again.run() is Outcome.PROMOTED
    assert split.history == [10, 50, 100]  # resumed at 10 %: not set again


def test_an_inconclusive_window_between_passes_only_delays():
    run, _, clock = rollout([I, P, P])
    assert run.run() is Outcome.PROMOTED
    assert clock.slept == [60, 60, 60]


def test_prometheus_failing_mid_rollout_rolls_back_after_the_error_limit():
    run, split, _ = rollout([P, E, E], error_limit=2)
    assert run.run() is Outcome.ROLLED_BACK
    assert split.history == [10, 50, 0]
    assert "failing safe" in run.events[-1].message


def test_an_error_between_answers_is_not_a_pass():
    run, _, clock = rollout([E, P, P])
    assert run.run() is Outcome.PROMOTED
    assert clock.slept == [60, 60, 60]


def test_prometheus_unreachable_before_the_start_changes_nothing():
    run, split, _ = rollout([], reachable=False)
    with pytest.raises(OpsError, match="rollout not started, nothing changed"):
        run.run()
    assert split.history == []


def test_a_rollback_that_cannot_be_applied_says_what_still_serves():
    run, _, _ = rollout([F], split=Split(fail_rollback=True))
    with pytest.raises(OpsError, match=r"ROLLBACK FAILED .* may still serve 10 %"):
        run.run()


def test_every_event_is_json_for_ci():
    import json

    run, _, _ = rollout([P, F])
    run.analyser.analyse = lambda: Analysis(
        Verdict.FAIL, ["error ratio 5 % is above its limit 1.44 %"], 240.0,
        [Measurement(RATIO, 0.05), Measurement(P99, math.nan), Measurement(ROUTE_P99, None)], 0.007)
    assert run.run() is Outcome.ROLLED_BACK
    events = json.loads(json.dumps([e.to_dict() for e in run.events]))
    assert [e["action"] for e in events] == ["start", "set-weight", "analysis", "rolled-back"]
    analysis = events[2]["analysis"]
    assert analysis["verdict"] == "fail" and analysis["requests"] == 240.0
    assert [m["value"] for m in analysis["measurements"]] == [0.05, None, None]  # NaN as null
    assert events[-1]["weight"] == 0 and events[-1]["elapsed_seconds"] == 60
