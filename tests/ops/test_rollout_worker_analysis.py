"""A Worker's rollout analysis (ops.rollout.worker_analytics) against a stand-in of Cloudflare's
GraphQL Analytics API on loopback (tests/ops/cloudflare_analytics.py): the query it sends (the
account, the Worker's script, the new version, the window) and the verdicts `judge` gives the
counts the stand-in aggregates. The invocations are counts the tests record in the stand-in (a
Worker's invocation errors, uncaught exceptions and exceeded resources, are Cloudflare's own
accounting, which the Worker, answering every failure itself, never produces locally; real
invocations in workerd feed it in tests/ops/test_rollout_worker_invocations.py). The loop itself with this analyser: its fail-safe
rollback when the API cannot be asked, and a release promoted or rolled back on the traffic each
step sends the new version."""
from __future__ import annotations

import datetime as dt

import pytest

from infra.config.worker import WorkerCanary
from ops.errors import OpsError
from ops.rollout.analysis import Verdict
from ops.rollout.controller import Outcome, Rollout
from ops.rollout.worker_analytics import (
    CloudflareAnalytics,
    WorkerAnalyser,
    worker_checks,
)
from tests.conftest import free_port
from tests.ops.cloudflare_analytics import ACCOUNT, TOKEN

SCRIPT = "ai-worker-staging"
NEW = "7d0e7a52-3b1c-4c52-9a61-2f4c8b1d9e01"
STABLE = "3f2c1a9e-7b6d-4e5f-8a9b-0c1d2e3f4a5b"
WINDOW = 60


def analyser(url: str, token: str = TOKEN, version: str | None = NEW, wall_time_p99_ms=None,
             now=None, min_requests: int = 100) -> WorkerAnalyser:
    found = worker_checks("99.9", 14.4, wall_time_p99_ms)
    return WorkerAnalyser(CloudflareAnalytics(token, ACCOUNT, url), SCRIPT, lambda: version, found,
                          min_requests, WINDOW, **({"now": now} if now else {}))


def test_a_good_window_passes_and_the_query_names_the_script_the_version_and_the_window(
        cloudflare_analytics):
    cloudflare_analytics.record(SCRIPT, NEW, 200, errors=0)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    analysis = analyser(cloudflare_analytics.url, wall_time_p99_ms=500).analyse()
    assert analysis.verdict is Verdict.PASS, analysis.reasons
    assert analysis.requests == 200
    assert analysis.reasons[0] == f"version {NEW}: 200 requests"
    assert "error ratio (limit 14.4x the 99.9 % budget) 0 % within 1.44 %" in analysis.reasons
    assert "p99 wall time 20 ms within 500 ms" in analysis.reasons
    (body,) = cloudflare_analytics.received
    variables = body["variables"]
    assert {k: variables[k] for k in ("accountTag", "scriptName", "scriptVersion")} == {
        "accountTag": ACCOUNT, "scriptName": SCRIPT, "scriptVersion": NEW}
    start, end = (dt.datetime.fromisoformat(variables[k])
                  for k in ("start", "end"))
    assert end - start == dt.timedelta(seconds=WINDOW)
    assert before <= end <= dt.datetime.now(dt.UTC)
    assert "sum { requests errors }" in body["query"] and "wallTimeP99" in body["query"]


def test_five_percent_errors_fail_against_the_burn_rate_limit(cloudflare_analytics):
    cloudflare_analytics.record(SCRIPT, NEW, 200, errors=10)
    analysis = analyser(cloudflare_analytics.url).analyse()
    assert analysis.verdict is Verdict.FAIL
    assert analysis.reasons == [(f"version {NEW}: error ratio (limit 14.4x the 99.9 % budget) 5 % "
                                f"is above its limit 1.44 %")]
    assert [m.to_dict()["value"] for m in analysis.measurements] == [0.05]


def test_a_slow_version_fails_its_wall_time_objective(cloudflare_analytics):
    cloudflare_analytics.record(SCRIPT, NEW, 150, wall_time_us=650_000)
    analysis = analyser(cloudflare_analytics.url, wall_time_p99_ms=500).analyse()
    assert analysis.verdict is Verdict.FAIL
    assert analysis.reasons == [f"version {NEW}: p99 wall time 650 ms is above its limit 500 ms"]


def test_too_little_traffic_holds(cloudflare_analytics):
    cloudflare_analytics.record(SCRIPT, NEW, 20)
    analysis = analyser(cloudflare_analytics.url).analyse()
    assert analysis.verdict is Verdict.INCONCLUSIVE
    assert analysis.reasons == [(f"version {NEW}: too little traffic to judge: 20 requests to the "
                                f"new version in the last 60s, at least 100 needed; holding "
                                f"(never promoted without evidence)")]


def test_no_row_is_inconclusive_and_only_the_new_versions_invocations_in_the_window_count(
        cloudflare_analytics):
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=WINDOW + 30)
    cloudflare_analytics.record(SCRIPT, STABLE, 500, errors=100)  # the stable version's
    cloudflare_analytics.record("another-worker", NEW, 500, errors=100)
    cloudflare_analytics.record(SCRIPT, NEW, 500, errors=100, at=long_ago)  # before the window
    analysis = analyser(cloudflare_analytics.url).analyse()
    assert analysis.verdict is Verdict.INCONCLUSIVE
    assert analysis.requests is None
    assert "too little traffic to judge: 0 requests" in analysis.reasons[0]


def test_no_new_version_yet_is_inconclusive_without_asking(cloudflare_analytics):
    analysis = analyser(cloudflare_analytics.url, version=None).analyse()
    assert analysis.verdict is Verdict.INCONCLUSIVE
    assert analysis.reasons == [f"{SCRIPT} has no new version to judge yet"]
    assert cloudflare_analytics.received == []


@pytest.mark.parametrize("answer, said", [
    ((200, {"data": None, "errors": [{"message": "quota exceeded for this account"}]}),
     "refused the query: quota exceeded for this account"),
    ((403, {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]}),
     "answered 403: "),
    ((200, {"data": {"viewer": {}}, "errors": None}),
     "answered without data.viewer.accounts[0].workersInvocationsAdaptive"),
    ((502, "<html>bad gateway</html>"), "answered 502: "),
])
def test_an_api_error_is_no_verdict(cloudflare_analytics, answer, said):
    cloudflare_analytics.record(SCRIPT, NEW, 500)
    cloudflare_analytics.answers.append(answer)
    analysis = analyser(cloudflare_analytics.url).analyse()
    assert analysis.verdict is Verdict.ERROR
    (reason,) = analysis.reasons
    assert reason.startswith(f"Cloudflare's analytics at {cloudflare_analytics.url}") and said in reason


def test_a_refused_token_is_no_verdict(cloudflare_analytics):
    cloudflare_analytics.record(SCRIPT, NEW, 500)
    analysis = analyser(cloudflare_analytics.url, token="revoked").analyse()
    assert analysis.verdict is Verdict.ERROR
    assert analysis.reasons == [(f"Cloudflare's analytics at {cloudflare_analytics.url} answered "
                                f"401: {{\"success\": false, \"errors\": [{{\"code\": 10000, "
                                f"\"message\": \"Authentication error\"}}]}}")]


def test_an_account_the_token_cannot_see_is_no_verdict(cloudflare_analytics):
    other = WorkerAnalyser(CloudflareAnalytics(TOKEN, "f" * 32, cloudflare_analytics.url), SCRIPT,
                           lambda: NEW, worker_checks("99.9", 14.4, None), 100, WINDOW)
    analysis = other.analyse()
    assert analysis.verdict is Verdict.ERROR
    assert analysis.reasons == [(f"Cloudflare's analytics at {cloudflare_analytics.url}: no account "
                                f"{'f' * 32} for this token")]


def test_the_api_unreachable_is_no_verdict():
    url = f"http://127.0.0.1:{free_port()}/client/v4/graphql"
    analysis = analyser(url).analyse()
    assert analysis.verdict is Verdict.ERROR
    assert analysis.reasons[0].startswith(f"Cloudflare's analytics at {url} cannot be queried: ")


# -- the loop with this analyser -----------------------------------------------------------------

class Split:
    """The Worker's split as the loop sees it; each step's window sends the new version its share
    of `per_window` requests, `error_every`-th of them failing (0: none)."""

    def __init__(self, stand_in, clock: Clock, per_window: int, error_every: int = 0):
        self.stand_in, self.clock = stand_in, clock
        self.per_window, self.error_every = per_window, error_every
        self.current, self.history = 0, []
        clock.during_sleep = self.traffic

    def describe(self) -> str:
        return f"{SCRIPT}: {NEW} beside {STABLE}"

    def weight(self) -> int:
        return self.current

    def set_weight(self, percent: int, reason: str) -> None:
        self.current = percent
        self.history.append(percent)

    def traffic(self) -> None:
        count = self.per_window * self.current // 100
        errors = count // self.error_every if self.error_every else 0
        self.stand_in.record(SCRIPT, NEW, count, errors=errors, at=self.clock.wall())


class Clock:
    """The loop's clock and sleep, and the wall clock the analyser's window ends at: a sleep
    moves both by its length, the step's traffic landing within it."""

    def __init__(self):
        self.now = 0.0
        self.start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
        self.during_sleep = lambda: None

    def __call__(self) -> float:
        return self.now

    def wall(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.now)

    def sleep(self, seconds: float) -> None:
        self.now += seconds / 2
        self.during_sleep()
        self.now += seconds / 2


def run(stand_in, per_window: int, error_every: int = 0, url: str | None = None,
        **canary) -> tuple[Rollout, Split]:
    clock = Clock()
    split = Split(stand_in, clock, per_window, error_every)
    settings = WorkerCanary(window_seconds=WINDOW, **canary)
    found = analyser(url or stand_in.url, now=clock.wall, min_requests=settings.min_requests)
    return Rollout(SCRIPT, settings, found, split, sleep=clock.sleep, clock=clock), split


def test_a_good_release_is_promoted_step_by_step(cloudflare_analytics):
    rollout, split = run(cloudflare_analytics, per_window=2000)
    assert rollout.run() is Outcome.PROMOTED
    assert split.history == [10, 50, 100]
    analyses = [e.analysis for e in rollout.events if e.action == "analysis"]
    assert [a["requests"] for a in analyses] == [200, 1000]  # each window: its own step's traffic


def test_a_release_failing_five_percent_is_rolled_back_at_its_first_step(cloudflare_analytics):
    rollout, split = run(cloudflare_analytics, per_window=2000, error_every=20)
    assert rollout.run() is Outcome.ROLLED_BACK
    assert split.history == [10, 0]
    assert "5 % is above its limit 1.44 %" in rollout.events[-1].message


def test_too_little_traffic_holds_at_the_first_step(cloudflare_analytics):
    rollout, split = run(cloudflare_analytics, per_window=500, inconclusive_limit=2)
    assert rollout.run() is Outcome.HELD
    assert split.history == [10]
    assert "too little traffic to judge: 50 requests" in rollout.events[-1].message


def test_the_api_failing_during_the_rollout_rolls_back_never_promoting(cloudflare_analytics):
    rollout, split = run(cloudflare_analytics, per_window=2000, error_limit=2)
    # The preflight is answered; every analysis after it is refused.
    cloudflare_analytics.answers += [(200, {"data": {"viewer": {"accounts": [
        {"workersInvocationsAdaptive": []}]}}, "errors": None})] + [
        (403, {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]})] * 2
    assert rollout.run() is Outcome.ROLLED_BACK
    assert split.history == [10, 0]
    assert rollout.events[-1].message.startswith(
        "rolled back to the stable version: Cloudflare's analytics could not judge the release 2 "
        "times in a row (Cloudflare's analytics at ")
    assert rollout.events[-1].message.endswith("): failing safe")


def test_the_api_unreachable_before_the_start_changes_nothing(cloudflare_analytics):
    url = f"http://127.0.0.1:{free_port()}/client/v4/graphql"
    rollout, split = run(cloudflare_analytics, per_window=2000, url=url)
    with pytest.raises(OpsError, match=r"rollout not started, nothing changed: Cloudflare's "
                                       r"analytics at .* cannot be queried"):
        rollout.run()
    assert split.history == []


# -- the Worker's objective and settings, as its stack config gives them -------------------------

def test_a_workers_objective_is_its_canary_availability_else_the_zones_edge_error_slo():
    from infra.project import PROJECT_ROOT
    from ops.project import Project
    from ops.stack_config import validated

    project = Project.at(PROJECT_ROOT)
    info = project.stack("ai-worker.staging")
    assert validated(project, info).availability == "99.9"  # neither: the edge alert's default
    zone = {"platform:notifications": {"emails": ["oncall@example.com"], "edge_error_slo": "99.5"}}
    assert validated(project, info, zone).availability == "99.5"
    own = validated(project, info, {**zone, "platform:canary": {"availability": "99.95"}})
    assert own.availability == "99.95"
    (ratio,) = worker_checks(own.availability, own.canary.max_burn_rate, None)
    assert ratio.limit == pytest.approx(14.4 * 0.0005)


def test_each_bad_worker_canary_key_is_one_readable_message():
    from infra.errors import ConfigError
    from infra.project import PROJECT_ROOT
    from ops.project import Project
    from ops.stack_config import validated

    project = Project.at(PROJECT_ROOT)
    bad = {"steps": [50, 10], "wall_time_p99_ms": 0, "availability": "80", "selector": {"a": "b"}}
    with pytest.raises(ConfigError) as raised:
        validated(project, project.stack("ai-worker.staging"), {"platform:canary": bad})
    assert str(raised.value).splitlines() == [
        "stack 'ai-worker.staging': invalid config (4 problems):",
        "  - platform:canary.availability: '80' is not an SLO in percent such as 99.9",
        "  - platform:canary.selector: unknown key",
        "  - platform:canary.steps: [50, 10] must rise step by step",
        "  - platform:canary.wall_time_p99_ms: Input should be greater than or equal to 1"]
