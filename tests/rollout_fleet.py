"""A release's two versions on loopback, judged by a real Prometheus: shared by the rollout
tests (tests/test_rollout_prometheus.py drives the loop with a split of its own;
tests/e2e/test_rollout.py with `platform rollout` against a local cluster).

Two real gateway processes, the stable version (`track="stable"`) and the new one
(`track="canary"`), each calling a Worker stub of its own on loopback (the new version's fault is
its Worker failing 1 call in N, with no change to the gateway's code), and the Prometheus server
the toolchain builds scraping both every second under the service's job with a stack's rendered
recording and alert rules, as the environment's Prometheus scrapes the two Deployments. A
traffic driver plays the ingress controller: each request goes to the new version with the
split's current weight (`split.current`), deterministically, in a bounded loop.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import yaml

from infra.project import PROJECT_ROOT
from tests.conftest import free_port
from tests.test_workload_wiring import start_service

GATEWAY = PROJECT_ROOT / "apps" / "api-gateway"
STARTUP_DEADLINE = 60
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


def rule_file(run, folder: Path) -> tuple[Path, str]:
    """A rendered stack's PrometheusRule as a rule file in `folder`, and the namespace its
    expressions select."""
    from offline.render import normalize
    (rule,) = [r for r in run.resources if r.type == PROMETHEUS_RULE]
    spec = normalize(rule.inputs)
    path = folder / "rules.yaml"
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


class Weighted(Protocol):
    """What the driver reads: the new version's share of its requests, in percent."""

    current: int


@dataclass
class LoopbackSplit:
    """The ingress controller of a test that drives the loop itself: the new version's share of
    the driver's requests, set directly."""

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


@dataclass
class Fleet:
    prometheus: str
    prometheus_process: subprocess.Popen
    stable: str
    canary: str
    split: Any  # Weighted: LoopbackSplit, or a weight read from a cluster
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


@contextlib.contextmanager
def running_fleet(prometheus_binary: Path, rules: tuple[Path, str], gateway_binary: Path,
                  folder: Path, split: Any, fail_every: int = 0) -> Iterator[Fleet]:
    """Two Worker stubs, the stable and the new gateway, and Prometheus scraping both with the
    rules, every second; yielded once Prometheus reports both targets up and the rules loaded;
    every process stopped after. The new version's Worker fails 1 call in `fail_every` (0:
    never)."""
    rules_path, namespace = rules
    processes: list[subprocess.Popen] = []
    stubs = [WorkerStub(), WorkerStub(fail_every)]
    try:
        bases = []
        for stub in stubs:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {"PORT": str(port), "CATALOG_PATH": str(GATEWAY / "catalog.json"),
                   "WORKER_URL": stub.url, "WORKER_AUTH": "none", "LOG_LEVEL": "warn"}
            processes.append(start_service(gateway_binary, env, base, "/readyz"))
            bases.append(base)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        targets = [{"targets": [base.removeprefix("http://")],
                    "labels": {"namespace": namespace, "track": track}}
                   for base, track in zip(bases, ["stable", "canary"], strict=True)]
        config = folder / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_path)],
            "scrape_configs": [{"job_name": "api-gateway", "static_configs": targets}]}))
        log = (folder / "prometheus.log").open("wb")
        prometheus = subprocess.Popen(
            [str(prometheus_binary), f"--config.file={config}",
             f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT)
        processes.append(prometheus)
        wait_for("Prometheus scraping both gateways", lambda: sorted(
            (s["metric"]["track"], s["value"][1]) for s in query(url, 'up{job="api-gateway"}'))
            == [("canary", "1"), ("stable", "1")])
        wait_for("the stack's rules loaded", lambda: json.loads(urllib.request.urlopen(
            f"{url}/api/v1/rules", timeout=5).read())["data"]["groups"])
        yield Fleet(url, prometheus, bases[0], bases[1], split)
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


def under_traffic(fleet: Fleet, action: Callable[[], Any], **traffic) -> Any:
    """`action()` while the fleet's bounded traffic runs; the traffic stopped after, whatever happened."""
    driver = fleet.drive(**traffic)
    try:
        return action()
    finally:
        fleet.stop.set()
        driver.join(timeout=30)
