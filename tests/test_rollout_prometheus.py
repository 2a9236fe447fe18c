"""Rollouts judged by a real Prometheus: the server built from the toolchain runs on loopback
with api-gateway.staging's rendered recording and alert rules, scraping two real gateway
processes every second, the stable version (`track="stable"`) and the new one
(`track="canary"`), as the environment's Prometheus scrapes the two Deployments. Each gateway
calls a Worker of its own on loopback; the new version's fault is its Worker failing 1 call in
10 (half of the traffic calls the Worker: 5 % of the new version's answers are 502s), with no
change to the gateway's code. A traffic driver plays the ingress controller: it sends each
request to the new version with the split's current weight, deterministically, in a bounded
loop. The analysis is `platform rollout`'s own (`ops.rollout.stack.analyser_for` on the
stack's config), with a window suited to a test.

Cases: a good release promoted through every step; a bad one rolled back after the first
window of its first step; no traffic to the new version held, saying so; Prometheus unreachable
before the start (nothing changes) and during the rollout (rolled back, never promoted)."""
from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from infra.config.canary import Canary
from infra.project import PROJECT_ROOT
from ops.errors import OpsError
from ops.project import Project
from ops.rollout.controller import Event, Outcome, Rollout
from ops.rollout.stack import analyser_for
from tests.conftest import engine_tools, free_port
from tests.test_workload_wiring import start_service

STACK = "api-gateway.staging"
GATEWAY = PROJECT_ROOT / "apps" / "api-gateway"
# A test's window: five scrapes and rule evaluations at 1 s, and enough requests at 10 %.
WINDOW = 6
MIN_REQUESTS = 20
STARTUP_DEADLINE = 60


@pytest.fixture(scope="session")
def prometheus_binary(pytestconfig) -> Path:
    """The Prometheus server of tools/engine (`build.py prometheus`; `make monitoring-tools`)."""
    return engine_tools(pytestconfig, ["prometheus"], "monitoring-tools") / "prometheus"


@pytest.fixture(scope="module")
def rules(repo_renderer, tmp_path_factory) -> tuple[Path, str]:
    """The stack's rendered PrometheusRule as a rule file, and the namespace it selects."""
    run = repo_renderer.run(STACK)
    (rule,) = [r for r in run.resources if r.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"]
    from offline.render import normalize
    spec = normalize(rule.inputs)
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump(spec["spec"], sort_keys=False))
    return path, spec["metadata"]["namespace"]


class WorkerStub:
    """A Worker on loopback answering completions; `fail_every` N: every Nth call is a 500."""

    def __init__(self, fail_every: int = 0):
        self.calls = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stub.lock:
                    stub.calls += 1
                    fail = fail_every and stub.calls % fail_every == 0
                body = (b'{"error":"injected fault"}' if fail else
                        json.dumps({"module": "summarize", "completion": "ok"}).encode())
                self.send_response(500 if fail else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(what: str, condition, deadline: float = STARTUP_DEADLINE):
    """Poll `condition` until it returns a true value; fail naming `what` at the deadline."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        try:
            last = condition()
            if last:
                return last
        except OSError as error:
            last = error
        time.sleep(0.1)
    raise AssertionError(f"{what} within {deadline}s (last: {last!r})")


def query(url: str, expr: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}),
                                timeout=5) as response:
        return json.loads(response.read())["data"]["result"]


@dataclass
class LoopbackSplit:
    """The ingress controller of the test: the new version's share of the driver's requests."""

    current: int = 0
    history: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def describe(self) -> str:
        return "loopback split between the stable and the new gateway"

    def weight(self) -> int:
        return self.current

    def set_weight(self, percent: int, reason: str) -> None:
        with self.lock:
            self.current = percent
            self.history.append(percent)


@dataclass
class Fleet:
    prometheus: str
    prometheus_process: subprocess.Popen
    stable: str
    canary: str
    split: LoopbackSplit
    sent: dict[str, int] = field(default_factory=lambda: {"stable": 0, "canary": 0})
    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: {"stable": {}, "canary": {}})
    stop: threading.Event = field(default_factory=threading.Event)

    def drive(self, limit: int, deadline: float, canary_traffic: bool = True,
              rate: float | None = None) -> threading.Thread:
        """Send at most `limit` requests for at most `deadline` seconds, alternating a catalog
        read and a completion (per version), as fast as they are answered or at `rate` per second; each goes
        to the new version with the split's weight (a smooth weighted round robin, no
        randomness). Stops early on `stop`."""

        def loop() -> None:
            credit, start = 0, time.monotonic()
            end = start + deadline
            for i in range(limit):
                if rate:  # the pace of low traffic: the next request's due time
                    self.stop.wait(max(0.0, start + i / rate - time.monotonic()))
                if self.stop.is_set() or time.monotonic() > end:
                    return
                credit += self.split.current if canary_traffic else 0
                track = "stable"
                if credit >= 100:
                    credit -= 100
                    track = "canary"
                base = self.canary if track == "canary" else self.stable
                if self.sent[track] % 2:  # alternate per version: each gets both kinds
                    status = post(base + "/v1/ai/complete", {"module": "summarize", "prompt": "hi"})
                else:
                    status = post(base + "/v1/modules", None)
                self.sent[track] += 1
                self.statuses[track][status] = self.statuses[track].get(status, 0) + 1

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread


def post(url: str, body: dict | None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


@pytest.fixture
def fleet(request, prometheus_binary, rules, go_service_binary, tmp_path):
    """Two Worker stubs, the stable and the new gateway, and Prometheus scraping both with the
    stack's rules, every second; ready once Prometheus reports both targets up and the rules
    loaded. `@pytest.mark.parametrize("fleet", [N], indirect=True)`: the new version's Worker
    fails 1 call in N (0: never)."""
    fail_every = getattr(request, "param", 0)
    rules_path, namespace = rules
    binary = go_service_binary("api-gateway")
    processes: list[subprocess.Popen] = []
    stubs = [WorkerStub(), WorkerStub(fail_every)]
    try:
        bases = []
        for stub in stubs:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {"PORT": str(port), "CATALOG_PATH": str(GATEWAY / "catalog.json"),
                   "WORKER_URL": stub.url, "WORKER_AUTH": "none", "LOG_LEVEL": "warn"}
            processes.append(start_service(binary, env, base, "/readyz"))
            bases.append(base)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        targets = [{"targets": [base.removeprefix("http://")],
                    "labels": {"namespace": namespace, "track": track}}
                   for base, track in zip(bases, ["stable", "canary"])]
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_path)],
            "scrape_configs": [{"job_name": "api-gateway", "static_configs": targets}]}))
        log = (tmp_path / "prometheus.log").open("wb")
        prometheus = subprocess.Popen(
            [str(prometheus_binary), f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT)
        processes.append(prometheus)
        wait_for("Prometheus scraping both gateways", lambda: sorted(
            (s["metric"]["track"], s["value"][1]) for s in query(url, 'up{job="api-gateway"}'))
            == [("canary", "1"), ("stable", "1")])
        wait_for("the stack's rules loaded", lambda: json.loads(urllib.request.urlopen(
            f"{url}/api/v1/rules", timeout=5).read())["data"]["groups"])
        yield Fleet(url, prometheus, bases[0], bases[1], LoopbackSplit())
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stub in stubs:
            stub.close()


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


def under_traffic(fleet, action, **traffic):
    """`action()` while the fleet's bounded traffic runs; the traffic stopped after, whatever happened."""
    driver = fleet.drive(**traffic)
    try:
        return action()
    finally:
        fleet.stop.set()
        driver.join(timeout=30)


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
