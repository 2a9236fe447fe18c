"""`platform rollout` for real: api-gateway.staging's canary release taken through its steps by
the real engine against the local cluster, on an S3 backend (an S3-compatible server on
loopback), judged by a real Prometheus.

The cluster's pods are kwok's (they run nothing), so the two versions whose series Prometheus
reads run on loopback (tests.rollout_fleet: real gateway processes, `track="stable"` and
`track="canary"`); the traffic driver plays ingress-nginx from what the cluster holds: each
request goes to the new version with the canary weight of the stack's canary Ingress as the API
server has it (read every 0.2 s; no canary Ingress: 0). So each step the rollout takes is a stack
file change and an `up`, seen by the ingress controller's stand-in, the traffic it sends and the
analysis of that traffic.

(a) a good release is promoted 10 -> 50 -> 100 %, each step an update of the stack with its
decision, then the stable Deployment runs its digest and the canary objects are gone;
(b) a release failing 5 % of its answers is rolled back after its first window: exit 2, the
stable version untouched, the canary objects gone.
"""
from __future__ import annotations

import json
import secrets
import threading
from itertools import pairwise
from pathlib import Path

import pytest

from infra.stack_files import StackFileEditor
from offline.render import Renderer
from tools.cluster.kube import ApiError, Kube, path_for

from tests.e2e.conftest import FIGURES, deploy_stacks, rolled_out
from tests.e2e.harness import Workspace, stack_config
from tests.e2e.kube_objects import wait_for
from tests.e2e.object_store import ObjectStore
from tests.rollout_fleet import rule_file, running_fleet, under_traffic

SERVICE = "api-gateway.staging"
NAMESPACE = "rollout-staging"
CANARY = "api-gateway-canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
GOOD_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "7c" * 32
BAD_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "5e" * 32
# A test's window: six scrapes at 1 s, and enough requests at 10 % of 100 a second.
SETTINGS = {"window_seconds": 6, "min_requests": 20}
RATE = 100
DEADLINE = 900


class ClusterCanaryWeight:
    """The ingress controller's view of the split: the canary Ingress' weight as the API server
    holds it, read every 0.2 s (`current`; 0 without a canary Ingress), and each change seen
    (`seen`: None while there is no canary Ingress)."""

    def __init__(self, kube: Kube, namespace: str):
        self.kube, self.path = kube, path_for("networking.k8s.io/v1", "Ingress", CANARY, namespace)
        self.current = 0
        self.seen: list[int | None] = []
        self.stop = threading.Event()
        self.read()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def read(self) -> None:
        try:
            weight = int(self.kube.get(self.path)["metadata"]["annotations"][CANARY_WEIGHT])
        except ApiError as error:
            if error.status != 404:
                raise
            weight = None
        if not self.seen or self.seen[-1] != weight:
            self.seen.append(weight)
        self.current = weight or 0

    def poll(self) -> None:
        while not self.stop.wait(0.2):
            self.read()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def store(toolchain, tmp_path_factory):
    store = ObjectStore(tmp_path_factory.mktemp("rollout-s3")).start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture(scope="module")
def deployed(cluster, store, tmp_path_factory) -> Workspace:
    """staging and api-gateway.staging up through `platform up` on an S3 backend, in a namespace
    of the module's own; the service's canary analysis and scrape at a test's pace."""
    ws = Workspace.create(tmp_path_factory.mktemp("rollout"), cluster.kubeconfig)
    ws.backend_url = store.bucket_url(f"rollout-{secrets.token_hex(4)}")
    ws.extra_env = store.credentials()
    ws.use_namespace("staging", NAMESPACE)
    editor = StackFileEditor(stack_file(ws))
    editor.set("platform:monitoring", ["scrape_interval"], "1s")
    editor.set("platform:canary", [], SETTINGS)
    editor.write()
    deploy_stacks(ws, cluster.client(), ["staging", SERVICE],
                  lambda stack: ws.platform("up", stack, "--yes").stdout)
    return ws


@pytest.fixture
def fleet(request, deployed, cluster, prometheus_binary, go_service_binary, tmp_path):
    """The two versions and Prometheus with the workspace's own rules, split by the cluster's
    canary Ingress. `@pytest.mark.parametrize("fleet", [N], indirect=True)`: the new version's
    Worker fails 1 call in N (0: never)."""
    rules = rule_file(Renderer(root=deployed.root).run(SERVICE), tmp_path)
    assert rules[1] == NAMESPACE
    weight = ClusterCanaryWeight(cluster.client(), NAMESPACE)
    try:
        with running_fleet(prometheus_binary, rules, go_service_binary("api-gateway"), tmp_path,
                           weight, getattr(request, "param", 0)) as fleet:
            yield fleet
    finally:
        weight.close()


def stack_file(ws: Workspace) -> Path:
    return ws.root / f"Pulumi.{SERVICE}.yaml"


def add_release(ws: Workspace, image: str) -> None:
    """The new version in the stack file, as its pull request would put it: weight 0."""
    editor = StackFileEditor(stack_file(ws))
    editor.set("platform:canary", [], {**SETTINGS, "release": {"image": image, "weight": 0}})
    editor.write()


def rollout(ws: Workspace, fleet) -> tuple[int, dict, str]:
    """`platform rollout SERVICE --json` while the traffic runs: its exit code, its report and
    what it printed on stderr (each update's progress)."""
    result = under_traffic(fleet, lambda: ws.platform(
        "rollout", SERVICE, "--prometheus", fleet.prometheus, "--json", check=False,
        timeout=DEADLINE), limit=RATE * DEADLINE, deadline=DEADLINE, rate=RATE)
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"exit {result.returncode}, no report:\n{result.stdout[-3000:]}"
                             f"{result.stderr[-6000:]}") from None
    return result.returncode, report, result.stderr


def rollout_updates(ws: Workspace, since: int) -> list[tuple[str, object]]:
    """(message, the canary release's weight in the recorded config, or None) of each update
    after the first `since`, oldest first."""
    found = []
    # A DIY backend (file, S3) numbers every update 0: their order is their start time.
    for update in sorted(ws.history(SERVICE), key=lambda u: u["startTime"])[since:]:
        entry = (update.get("config") or {}).get("platform:canary") or {}
        canary = entry.get("objectValue") or json.loads(entry.get("value") or "{}")
        found.append((update.get("message"), (canary.get("release") or {}).get("weight")))
    return found


def gone(kube: Kube) -> bool:
    for api_version, kind in [("apps/v1", "Deployment"), ("v1", "Service"),
                              ("networking.k8s.io/v1", "Ingress")]:
        try:
            kube.get(path_for(api_version, kind, CANARY, NAMESPACE))
            return False
        except ApiError as error:
            if error.status != 404:
                raise
    return True


def stable_image(kube: Kube) -> str:
    deployment = kube.get(path_for("apps/v1", "Deployment", "api-gateway", NAMESPACE))
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def test_a_good_release_is_promoted_each_step_an_update_of_the_stack(deployed, cluster, fleet,
                                                                     record_property):
    ws, kube = deployed, cluster.client()
    updates_before = len(ws.history(SERVICE))
    add_release(ws, GOOD_IMAGE)

    code, report, progress = rollout(ws, fleet)

    messages = [e["message"] for e in report["events"]]
    assert (code, report["outcome"]) == (0, "promoted"), "\n".join(messages) + progress[-4000:]
    assert [e["weight"] for e in report["events"] if e["action"] in ("set-weight", "promoted")] \
        == [10, 50, 100]
    # What the ingress controller's stand-in saw: no canary Ingress, 10, 50, 100 %, none again.
    assert fleet.split.seen == [None, 10, 50, 100, None]
    # Each step an update of the stack with its decision and its weight, in `platform history`.
    updates = rollout_updates(ws, updates_before)
    assert [weight for _, weight in updates] == [10, 50, 100, None], updates
    assert updates[0][0].startswith("platform rollout: canary 10% — step 1/3: the new version "
                                    "takes 10 % of the traffic")
    assert updates[1][0].startswith("platform rollout: canary 50% — step 2/3: the new version "
                                    "takes 50 % of the traffic (analysis at 10 % passed: ")
    assert updates[2][0].startswith("platform rollout: canary 100% — step 3/3: every step "
                                    "passed its analysis")
    assert updates[3][0] == (f"platform rollout: promote: {GOOD_IMAGE} is the stable image, "
                             f"the canary release removed")
    history = json.loads(ws.platform("history", SERVICE, "--json").stdout)
    assert [u["message"] for u in history[-4:]] == [m for m, _ in updates]
    # The stable Deployment runs the new digest, the canary objects are gone, the file says so.
    assert rolled_out(kube, SERVICE, ws.root)
    assert stable_image(kube) == GOOD_IMAGE
    assert gone(kube)
    config = stack_config(SERVICE, ws.root)
    assert config["platform:image"] == {"ref": GOOD_IMAGE}
    assert config["platform:canary"] == SETTINGS
    assert fleet.statuses["canary"].keys() <= {200} and fleet.sent["canary"] > 0

    ups = step_seconds(report)
    FIGURES["platform rollout, good release: each step's update(s) (s)"] = json.dumps(ups)
    FIGURES["platform rollout, good release: whole rollout (s)"] = str(report["events"][-1][
        "elapsed_seconds"])
    record_property("step_seconds", json.dumps(ups))
    record_property("rollout_seconds", report["events"][-1]["elapsed_seconds"])


def step_seconds(report: dict) -> dict[str, float]:
    """What each step's action took: from the event before it (the start, or the analysis that
    decided it) to the step recorded, i.e. its update(s) of the stack (two for the promotion
    and the rollback)."""
    events, found = report["events"], {}
    for before, event in pairwise(events):
        if event["action"] in ("set-weight", "promoted", "rolled-back"):
            name = event["action"] if event["action"] != "set-weight" else f"{event['weight']} %"
            found[name] = round(event["elapsed_seconds"] - before["elapsed_seconds"], 1)
    return found


@pytest.mark.parametrize("fleet", [10], indirect=True)
def test_a_release_failing_5_percent_is_rolled_back_stable_untouched(deployed, cluster, fleet,
                                                                     record_property):
    ws, kube = deployed, cluster.client()
    updates_before = len(ws.history(SERVICE))
    stable = stack_config(SERVICE, ws.root)["platform:image"]
    running = stable_image(kube)
    add_release(ws, BAD_IMAGE)

    code, report, progress = rollout(ws, fleet)

    messages = [e["message"] for e in report["events"]]
    assert (code, report["outcome"]) == (2, "rolled-back"), "\n".join(messages) + progress[-4000:]
    (analysis,) = [e for e in report["events"] if e["action"] == "analysis"
                   and e["analysis"]["verdict"] != "inconclusive"]
    assert analysis["analysis"]["verdict"] == "fail" and "error ratio" in analysis["message"]
    assert fleet.split.seen == [None, 10, 0, None]  # never past its first step
    updates = rollout_updates(ws, updates_before)
    assert [weight for _, weight in updates] == [10, 0, None], updates
    assert updates[1][0].startswith("platform rollout: rollback: canary 0% — analysis failed at "
                                    "10 %")
    assert updates[2][0] == ("platform rollout: rollback: the canary release removed, the "
                             "stable version unchanged")
    assert stable_image(kube) == running
    assert wait_for("the canary objects deleted", lambda: gone(kube))
    config = stack_config(SERVICE, ws.root)
    assert config["platform:image"] == stable and config["platform:canary"] == SETTINGS
    errors = sum(n for status, n in fleet.statuses["canary"].items() if status >= 500)
    assert errors and fleet.statuses["stable"].keys() <= {200}

    ups = step_seconds(report)
    exposed = next(e for e in report["events"] if e["action"] == "set-weight")
    took = round(report["events"][-1]["elapsed_seconds"] - exposed["elapsed_seconds"], 1)
    FIGURES["platform rollout, bad release: each step's update(s) (s)"] = json.dumps(ups)
    FIGURES["platform rollout, bad release: 10 % to rolled back (s)"] = str(took)
    record_property("step_seconds", json.dumps(ups))
    record_property("fault_to_rollback_seconds", took)
