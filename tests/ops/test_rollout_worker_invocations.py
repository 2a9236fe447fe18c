"""A Worker's rollout analysis on the counts of real invocations: the built bundle runs in workerd
(through miniflare, workers/ai-worker/local/serve.mjs), the test sends it requests, and each
invocation its own request log line reports (time, status, duration) is recorded in the stand-in
of Cloudflare's GraphQL Analytics API as one invocation of the new version, its wall time the
line's duration; the analysis then judges what the stand-in aggregates. The Worker answers every
request itself (its errors are responses, which Cloudflare counts as successful invocations), so
the failing cases are in tests/ops/test_rollout_worker_analysis.py, on counts the tests set."""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.rollout.analysis import Verdict
from ops.rollout.worker_analytics import (
    CloudflareAnalytics,
    WorkerAnalyser,
    worker_checks,
)
from tests.conftest import free_port, wait_until_healthy
from tests.e2e.harness import REPO_ROOT
from tests.ops.cloudflare_analytics import ACCOUNT, TOKEN

WORKER_DIR = REPO_ROOT / "workers" / "ai-worker"
SCRIPT = "ai-worker-staging"
NEW = "7d0e7a52-3b1c-4c52-9a61-2f4c8b1d9e01"


class Worker:
    def __init__(self, url: str, log: Path):
        self.url, self.log = url, log

    def lines(self) -> list[dict]:
        found = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("msg") == "request":
                    found.append(entry)
        return found


@pytest.fixture(scope="module")
def worker(tmp_path_factory) -> Iterator[Worker]:
    """The built Worker in workerd on loopback (its gateway: a port nobody listens on)."""
    if not (WORKER_DIR / "dist" / "worker.js").is_file():
        pytest.fail("no Worker bundle: run `make worker` (make test does)")
    node = shutil.which("node")
    if node is None:
        pytest.fail("no node on PATH: the Worker runs in workerd through miniflare")
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    port = free_port()
    process = subprocess.Popen(
        [node, str(WORKER_DIR / "local" / "serve.mjs")], cwd=WORKER_DIR,
        env={"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(port),
             "GATEWAY_URL": f"http://127.0.0.1:{free_port()}", "API_TOKEN": "invocations-token"},
        stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log, timeout=60)
        yield Worker(url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def invoke(worker: Worker, count: int) -> list[dict]:
    """`count` requests to the Worker, and the request log lines it wrote for them."""
    before = len(worker.lines())
    for _ in range(count):
        with urllib.request.urlopen(worker.url + "/healthz", timeout=10) as response:
            response.read()
    deadline = time.monotonic() + 30
    while len(worker.lines()) < before + count:
        assert time.monotonic() < deadline, "the Worker's request lines did not arrive"
        time.sleep(0.05)
    return worker.lines()[before:before + count]


def record(stand_in, lines: list[dict]) -> None:
    for line in lines:
        at = dt.datetime.fromisoformat(line["time"])
        stand_in.record(SCRIPT, NEW, 1, at=at, wall_time_us=line["duration_ms"] * 1000)


def analyser(url: str) -> WorkerAnalyser:
    return WorkerAnalyser(CloudflareAnalytics(TOKEN, ACCOUNT, url), SCRIPT, lambda: NEW,
                          worker_checks("99.9", 14.4, 5000), 100, 120)


def test_enough_real_invocations_within_the_objectives_pass(worker, cloudflare_analytics):
    lines = invoke(worker, 120)
    assert {line["status"] for line in lines} == {200}
    record(cloudflare_analytics, lines)
    analysis = analyser(cloudflare_analytics.url).analyse()
    assert analysis.verdict is Verdict.PASS, analysis.reasons
    assert analysis.requests == 120
    ratio, p99 = (m.value for m in analysis.measurements)
    assert ratio == 0
    durations = sorted(line["duration_ms"] for line in lines)  # the 99th by nearest rank
    assert p99 == durations[math.ceil(0.99 * len(durations)) - 1] / 1000


def test_too_few_real_invocations_hold(worker, cloudflare_analytics):
    record(cloudflare_analytics, invoke(worker, 30))
    analysis = analyser(cloudflare_analytics.url).analyse()
    assert analysis.verdict is Verdict.INCONCLUSIVE
    assert "too little traffic to judge: 30 requests" in analysis.reasons[0]
