"""Whole environments and pull requests' environments, for real: `platform up --env` from
nothing, a failure that stops only what depends on it, an interrupt and `--resume`, a `qa`
environment added by files alone, a pull request's environment created, served and destroyed
with nothing left, and an expired one swept.

The module has a control plane of its own: it creates and deletes the staging and production
namespaces that the session's cluster holds for the other modules. The steps build on each
other like an operator's session.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tools.cluster import Cluster
from tools.cluster.contexts import environment_contexts
from tools.cluster.kube import ApiError, Kube, path_for

from tests.e2e.conftest import FIGURES, kubernetes_contexts
from tests.e2e.harness import E2E_BUILD, Workspace
from tests.e2e.kube_objects import deployment_rolled_out, wait_for

LABEL = "platform.example.com/environment"
# Every kind of object the platform makes for an environment and a Go service, to look for
# leftovers by the environment's label.
KINDS = [("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "Service"), ("v1", "ConfigMap"),
         ("v1", "Secret"), ("v1", "ResourceQuota"), ("v1", "LimitRange"), ("apps/v1", "Deployment"),
         ("networking.k8s.io/v1", "NetworkPolicy"), ("networking.k8s.io/v1", "Ingress"),
         ("policy/v1", "PodDisruptionBudget"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
         ("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")]


class Run:
    def __init__(self, ws: Workspace, kube: Kube, cluster: Cluster):
        self.ws, self.kube, self.cluster = ws, kube, cluster
        self.seconds: dict[str, float] = {}

    def platform(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = self.ws.platform(*args, check=check)
        self.seconds[" ".join(args[:3])] = round(time.monotonic() - started, 1)
        return result

    def summary(self, *args: str, code: int = 0) -> dict:
        result = self.platform(*args, "--json", check=False)
        assert result.returncode == code, result.stdout + result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        return json.loads(result.stdout)

    def backend_stacks(self) -> set[str]:
        listed = json.loads(self.ws.pulumi("stack", "ls", "--json").stdout)
        return {s["name"].split("/")[-1] for s in listed}

    def labelled(self, env: str) -> list[str]:
        """Every object on the cluster carrying the environment's label."""
        found = []
        for api_version, kind in KINDS:
            try:
                items = self.kube.get(path_for(api_version, kind), labelSelector=f"{LABEL}={env}")["items"]
            except ApiError:  # a kind this cluster does not serve
                continue
            found += [f"{kind} {i['metadata'].get('namespace', '')}/{i['metadata']['name']}" for i in items
                      if not i["metadata"].get("deletionTimestamp") or kind != "Namespace"]
        return found

    def rolled_out(self, namespace: str, name: str = "api-gateway") -> dict:
        return wait_for(f"{name} in {namespace} to roll out",
                        lambda: deployment_rolled_out(self.kube, namespace, name), timeout=180)


@pytest.fixture(scope="module")
def run(toolchain, tmp_path_factory):
    cluster = Cluster(directory=E2E_BUILD / "cluster-whole-environments", contexts=kubernetes_contexts())
    cluster.start()
    try:
        ws = Workspace.create(tmp_path_factory.mktemp("whole-environments"), cluster.kubeconfig)
        it = Run(ws, cluster.client(), cluster)
        yield it
        FIGURES["whole environments (s)"] = json.dumps(it.seconds)
    finally:
        cluster.stop()


def states(summary: dict) -> dict[str, str]:
    return {s["stack"]: s["state"] for s in summary["stacks"]}


def test_up_env_brings_an_environment_up_from_nothing_environment_first(run: Run):
    result = run.platform("up", "--env", "staging", "--components", "api-gateway", "--yes", "--parallel", "2")
    lines = result.stderr.splitlines()
    # One line per change of a stack; the component starts only once its environment succeeded.
    ended = next(i for i, line in enumerate(lines) if line.startswith("✓ staging ") and "succeeded" in line)
    started = next(i for i, line in enumerate(lines) if line.startswith("▸ api-gateway.staging ") and "running" in line)
    assert ended < started, result.stderr
    assert "2 succeeded, 0 failed, 0 skipped, 0 not started" in result.stdout
    run.rolled_out("platform-staging")


def test_a_failed_stack_stops_only_what_depends_on_it(run: Run):
    # The Worker's stack needs Cloudflare, which no machine here reaches: it fails, alone.
    summary = run.summary("up", "--env", "staging", "--yes", code=1)
    assert states(summary) == {"staging": "succeeded", "api-gateway.staging": "succeeded",
                               "ai-worker.staging": "failed"}
    assert summary["summary"] == {"succeeded": 2, "failed": 1, "skipped": 0, "not started": 0}
    worker = next(s for s in summary["stacks"] if s["stack"] == "ai-worker.staging")
    assert worker["detail"], worker


def test_an_interrupted_run_resumes_with_only_what_did_not_finish(run: Run):
    process = subprocess.Popen(
        [sys.executable, "-m", "ops", "up", "--env", "production", "--components", "api-gateway",
         "--yes", "--parallel", "1"], cwd=run.ws.root, env={**run.ws.env(), "PYTHONPATH": str(run.ws.root)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 120
    while not any(line.startswith("▸ production ") for line in seen):
        assert time.monotonic() < deadline and process.poll() is None, "".join(seen)
        seen.append(process.stderr.readline())
    process.send_signal(signal.SIGINT)  # the operator's Ctrl-C while the environment stack runs
    out, err = process.communicate(timeout=600)
    assert process.returncode == 130, out + err
    assert "interrupted: starting nothing more; waiting for production" in err
    assert "interrupted: 1 succeeded, 0 failed, 0 skipped, 1 not started" in out
    assert "resume with the same command and --resume" in out

    summary = run.summary("up", "--env", "production", "--components", "api-gateway", "--yes", "--resume")
    by_stack = {s["stack"]: s for s in summary["stacks"]}
    assert by_stack["production"]["resumed_from_earlier_run"] is True
    assert by_stack["api-gateway.production"]["resumed_from_earlier_run"] is False
    assert by_stack["api-gateway.production"]["state"] == "succeeded"
    run.rolled_out("platform-production")


def test_drift_and_preview_of_a_whole_environment(run: Run):
    # --json: one entry per stack checked, what `platform drift-issues` reads.
    clean = run.summary("drift", "--env", "staging", "--components", "api-gateway")
    assert {stack: r["status"] for stack, r in clean.items()} == {"staging": "clean",
                                                                  "api-gateway.staging": "clean"}
    run.kube.delete(path_for("networking.k8s.io/v1", "NetworkPolicy", "allow-dns-egress", "platform-staging"))
    drift = run.summary("drift", "--all", "--components", "api-gateway", code=2)
    assert {stack: r["status"] for stack, r in drift.items()} == {
        "staging": "drift", "api-gateway.staging": "clean", "production": "clean",
        "api-gateway.production": "clean"}
    run.platform("up", "staging", "--refresh", "--yes")
    preview = run.summary("preview", "--all", "--components", "api-gateway")
    assert all(s["note"] == "no changes" for s in preview["stacks"]), preview


def add_qa(root: Path) -> None:
    """qa by its stack files alone: from staging's, its own namespace, context and domain."""
    env = (root / "Pulumi.staging.yaml").read_text()
    env = env.replace("platform-staging", "platform-qa").replace("staging.example.com", "qa.example.com")
    env = env.replace("  platform:namespace: platform-qa\n",
                      "  platform:namespace: platform-qa\n  platform:promotion:\n    after: staging\n")
    (root / "Pulumi.qa.yaml").write_text(env)
    (root / "Pulumi.api-gateway.qa.yaml").write_text((root / "Pulumi.api-gateway.staging.yaml").read_text())
    production = root / "Pulumi.production.yaml"
    production.write_text(production.read_text().replace("after: staging", "after: qa"))


def test_a_qa_environment_added_by_files_comes_up_and_goes(run: Run):
    add_qa(run.ws.root)
    assert "platform-qa" in environment_contexts(run.ws.root)
    run.cluster.answer_to(environment_contexts(run.ws.root))  # what `make cluster-up` writes
    summary = run.summary("up", "--env", "qa", "--yes")
    assert states(summary) == {"qa": "succeeded", "api-gateway.qa": "succeeded"}
    run.rolled_out("platform-qa")
    assert run.labelled("qa")
    summary = run.summary("destroy", "--env", "qa", "--yes")
    assert [s["stack"] for s in summary["stacks"]] == ["api-gateway.qa", "qa"]  # the reverse order
    assert states(summary) == {"qa": "succeeded", "api-gateway.qa": "succeeded"}
    wait_for("qa's objects to go", lambda: not run.labelled("qa"), timeout=120)


def test_a_pull_request_environment_is_served_then_destroyed_with_nothing_left(run: Run):
    started = time.monotonic()
    result = run.platform("env", "create", "pr-7", "--from", "staging", "--components", "api-gateway",
                          "--ttl", "2h", "--yes")
    FIGURES["platform env create pr-7 (1 component)"] = f"{time.monotonic() - started:.1f}s"
    assert "api-gateway service_url: http://api-gateway.platform-staging-pr-7.svc" in result.stdout, result.stdout
    run.rolled_out("platform-staging-pr-7")
    ingress = run.kube.get(path_for("networking.k8s.io/v1", "Ingress", "api-gateway", "platform-staging-pr-7"))
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["api.pr-7.staging.example.com"]
    objects = run.labelled("pr-7")
    assert "Namespace /platform-staging-pr-7" in objects and any(o.startswith("Deployment ") for o in objects)
    lifetime = json.loads(run.ws.pulumi("stack", "output", "lifetime", "--json", "-s", "pr-7").stdout)
    assert lifetime["template"] == "staging"
    assert run.backend_stacks() >= {"pr-7", "api-gateway.pr-7"}
    # The close event runs on another checkout: the generated stack files are not there.
    for path in run.ws.root.glob("Pulumi.*pr-7.yaml"):
        path.unlink()

    started = time.monotonic()
    run.platform("env", "destroy", "pr-7", "--yes")
    FIGURES["platform env destroy pr-7"] = f"{time.monotonic() - started:.1f}s"
    assert not {s for s in run.backend_stacks() if s.endswith("pr-7")}
    wait_for("pr-7's objects to go", lambda: not run.labelled("pr-7"), timeout=120)
    assert not list(run.ws.root.glob("Pulumi.*pr-7.yaml"))


def test_an_expired_environment_is_swept_and_an_unattributed_stack_reported(run: Run):
    run.platform("env", "create", "pr-8", "--from", "staging", "--components", "api-gateway",
                 "--ttl", "1s", "--yes")
    expires = json.loads(run.ws.pulumi("stack", "output", "lifetime", "--json", "-s", "pr-8").stdout)["expires_at"]
    wait_for("pr-8 to expire", lambda: datetime.now(timezone.utc) >= datetime.fromisoformat(expires), timeout=10)
    # A stack no `platform env create` made: reported, never destroyed.
    run.ws.pulumi("stack", "init", "api-gateway.pr-99")
    report = json.loads(run.platform("env", "sweep", "--yes", "--json").stdout)
    assert report["destroyed"] == {"pr-8": "destroyed"}
    assert report["unattributed"] == [{"environment": "pr-99", "stacks": ["api-gateway.pr-99"],
                                       "reason": "no environment stack"}]
    stacks = run.backend_stacks()
    assert "api-gateway.pr-99" in stacks and not {s for s in stacks if s.endswith("pr-8")}
    wait_for("pr-8's objects to go", lambda: not run.labelled("pr-8"), timeout=120)
    run.ws.pulumi("stack", "rm", "--yes", "api-gateway.pr-99")


def test_destroy_env_takes_the_environments_down_in_reverse_order(run: Run):
    for env in ("production", "staging"):
        summary = run.summary("destroy", "--env", env, "--yes")
        assert summary["stacks"][-1]["stack"] == env and summary["summary"]["failed"] == 0
        wait_for(f"{env}'s objects to go", lambda: not run.labelled(env), timeout=120)
    listed = json.loads(run.ws.pulumi("stack", "ls", "--json").stdout)
    assert all(not s.get("resourceCount") for s in listed), listed
