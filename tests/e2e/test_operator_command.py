"""The operator's command `platform`, for real: every subcommand through the Pulumi CLI against
a local cluster of its own, once on a file backend and once on a shared S3 backend (an
S3-compatible server on loopback), the way an operator or a team uses it.

The module's fixtures deploy every Kubernetes stack once per backend through `platform up`;
each test starts from that deployment and leaves it as it found it (what it changes, it puts
back), so any test runs alone or in any order. Tests that need nothing deployed, or that
destroy, get a workspace and a backend of their own on the same cluster.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pytest

from infra.stack_files import read_stack_config
from ops.engine.backends import StackState, open_store
from tools.cluster import Cluster
from tools.cluster.kube import Kube, path_for

from tests.e2e.conftest import FIGURES, deploy_stacks, kubernetes_contexts, rolled_out
from tests.e2e.harness import (
    E2E_BUILD,
    ENVIRONMENTS,
    KUBERNETES_STACKS,
    REPO_ROOT,
    SERVICES,
    Workspace,
    namespace_of,
    rendered_objects,
    stack_config,
)
from tests.e2e.kube_objects import differences, object_path, resource_versions, wait_for
from tests.e2e.object_store import ObjectStore

SERVICE = "api-gateway.staging"
OTHER_SERVICE = "api-gateway.production"
NEW_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "7c" * 32
BACKENDS = ["file", "s3"]


@dataclass
class Operator:
    """What the tests of one backend share: the cluster, the object store (s3), the deployment."""

    backend: str
    ws: Workspace
    kube: Kube
    cluster: Cluster
    store: ObjectStore | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    deployed_listing: dict = field(default_factory=dict)  # `platform stacks` right after deploying

    def platform(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = self.ws.platform(*args, check=check)
        self.seconds.setdefault(" ".join(args[:1]), round(time.monotonic() - started, 1))
        return result

    def raw(self, *args: str) -> float:
        """Seconds the raw `pulumi` command an operator would otherwise type takes."""
        started = time.monotonic()
        self.ws.pulumi(*args)
        return round(time.monotonic() - started, 1)

    def deployment(self, stack: str) -> dict:
        return self.kube.get(path_for("apps/v1", "Deployment", stack.split(".")[0],
                                      namespace_of(stack, self.ws.root)))

    def image(self, stack: str) -> str:
        return self.deployment(stack)["spec"]["template"]["spec"]["containers"][0]["image"]

    def hpa(self, stack: str) -> dict:
        return self.kube.get(path_for("autoscaling/v2", "HorizontalPodAutoscaler", stack.split(".")[0],
                                      namespace_of(stack, self.ws.root)))["spec"]

    def stack_file(self, stack: str) -> Path:
        return self.ws.root / f"Pulumi.{stack}.yaml"

    def history(self, stack: str) -> list[dict]:
        return json.loads(self.platform("history", stack, "--json").stdout)

    def no_changes(self, stack: str) -> bool:
        report = json.loads(self.platform("preview", stack, "--json").stdout)
        return not report["steps"] and not report["failed"]

    def rolled_out(self, stack: str) -> dict:
        return rolled_out(self.kube, stack, self.ws.root)

    def set(self, stack: str, key: str, value: str) -> None:
        self.ws.pulumi("config", "set", "--path", "-s", stack, key, value)

    def restore(self, stack: str) -> None:
        """The stack file as the repository has it, applied: what the next test expects."""
        self.stack_file(stack).write_text((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())
        self.platform("up", stack, "--yes")
        if stack in SERVICES:
            self.rolled_out(stack)

    def workspace_of_its_own(self, base: Path, prefix: str) -> Workspace:
        """A copy of the project on the same cluster with a backend of its own (an empty folder,
        or a new bucket of the store) and its environments in namespaces `<prefix>-<env>`."""
        ws = Workspace.create(base, self.cluster.kubeconfig)
        if self.store:
            ws.backend_url = self.store.bucket_url(f"{prefix}-{secrets.token_hex(4)}")
            ws.extra_env = self.store.credentials()
        for env in ENVIRONMENTS:
            ws.use_namespace(env, f"{prefix}-{env}")
        return ws


@pytest.fixture(scope="module", params=BACKENDS)
def op(request, toolchain, tmp_path_factory):
    backend = request.param
    base = tmp_path_factory.mktemp(f"operator-{backend}")
    cluster = Cluster(directory=E2E_BUILD / f"cluster-operator-{backend}", contexts=kubernetes_contexts())
    cluster.start()
    store = None
    try:
        ws = Workspace.create(base, cluster.kubeconfig)
        if backend == "s3":
            store = ObjectStore(base / "s3").start()
            ws.backend_url, ws.extra_env = store.backend_url, store.credentials()
        operator = Operator(backend, ws, cluster.client(), cluster, store)
        yield operator
        FIGURES[f"platform on the {backend} backend (s)"] = json.dumps(operator.seconds)
    finally:
        cluster.stop()
        if store:
            store.stop()


@pytest.fixture(scope="module")
def deployed(op: Operator) -> dict[str, str]:
    """Every Kubernetes stack up through `platform up` (services rolled out): what each printed
    (stdout, then stderr); `op.deployed_listing` holds `platform stacks --json` right after."""
    def up(stack: str) -> str:
        result = op.platform("up", stack, "--yes")
        return result.stdout + result.stderr

    printed = deploy_stacks(op.ws, op.kube, KUBERNETES_STACKS, up)
    op.deployed_listing = {r["stack"]: r["last_update"]
                           for r in json.loads(op.platform("stacks", "--json").stdout)}
    return printed


@pytest.fixture
def undeployed(op: Operator, tmp_path) -> Operator:
    """The project with nothing deployed: a backend of its own."""
    return Operator(op.backend, op.workspace_of_its_own(tmp_path, "never"), op.kube, op.cluster,
                    op.store)


def refused(op: Operator, *args: str) -> str:
    result = op.platform(*args, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, f"`platform {' '.join(args)}` exited {result.returncode}:\n{output}"
    assert "Traceback" not in output, output
    return output


def test_stacks_lists_the_repository_before_anything_is_deployed(undeployed: Operator):
    rows = json.loads(undeployed.platform("stacks", "--json").stdout)
    assert {r["stack"]: r["kind"] for r in rows}["api-gateway.staging"] == "go-service"
    assert [r["stack"] for r in rows][:2] == ["production", "staging"]  # environments first
    assert all(r["last_update"] is None for r in rows)


def test_a_stack_never_deployed_is_refused_with_the_reason(undeployed: Operator):
    output = refused(undeployed, "preview", SERVICE)
    assert f"its environment stack 'staging' has never been deployed; deploy it first: `platform up staging`" in output
    output = refused(undeployed, "rollback", SERVICE, "--to", "1", "--yes")
    assert f"stack '{SERVICE}' has never been deployed" in output
    output = refused(undeployed, "history", "staging")
    assert "stack 'staging' has never been deployed" in output


def test_every_kubernetes_stack_comes_up_through_platform_up(op: Operator, deployed):
    for stack in SERVICES:
        # One progress line per resource step, as the CLI shows them.
        assert "+  created  kubernetes:apps/v1:Deployment  api-gateway-deployment" in deployed[stack], deployed[stack]
        assert "service_url: http://api-gateway." in deployed[stack]
    for stack in KUBERNETES_STACKS:
        last = op.deployed_listing[stack]
        assert last["version"] == 1 and last["result"] == "succeeded", last


def test_scale_dry_run_shows_the_change_and_changes_nothing(op: Operator, deployed):
    before = op.stack_file(SERVICE).read_text()
    result = op.platform("scale", SERVICE, "--min", "3", "--max", "5", "--dry-run")
    assert "-    min_replicas: 2\n" in result.stdout and "+    min_replicas: 3\n" in result.stdout
    assert "update kubernetes:autoscaling/v2:HorizontalPodAutoscaler api-gateway-hpa" in result.stdout
    assert "spec.minReplicas: 2 -> 3" in result.stdout, result.stdout
    assert op.stack_file(SERVICE).read_text() == before
    assert op.hpa(SERVICE)["minReplicas"] == 2


def test_scale_changes_only_that_stack(op: Operator, deployed):
    others = [s for s in KUBERNETES_STACKS if s != SERVICE]
    untouched = [s for s in others if not s.endswith(".staging") and s != "staging"]
    versions = {s: resource_versions(op.kube, _rendered(op, s)) for s in untouched}

    op.platform("scale", SERVICE, "--min", "3", "--max", "5", "--yes")
    try:
        assert op.hpa(SERVICE)["minReplicas"] == 3 and op.hpa(SERVICE)["maxReplicas"] == 5
        text = op.stack_file(SERVICE).read_text()
        assert "    min_replicas: 3\n    max_replicas: 5\n" in text
        assert text.startswith("# Go-service stack: the api-gateway in staging.")  # comments kept
        for stack in others:
            assert op.no_changes(stack), f"{stack} previews changes after scaling {SERVICE}"
        for stack in untouched:
            assert resource_versions(op.kube, _rendered(op, stack)) == versions[stack], stack
    finally:
        op.restore(SERVICE)


def _rendered(op: Operator, stack: str) -> list[dict]:
    return rendered_objects(op.ws.render(stack, op.ws.root.parent / "render"))


def test_history_numbers_updates_with_the_settings_that_matter(op: Operator, deployed):
    original = stack_config(SERVICE)
    before = op.history(SERVICE)
    op.platform("scale", SERVICE, "--min", "3", "--max", "5", "--yes")
    try:
        history = op.history(SERVICE)
        assert [u["version"] for u in history] == list(range(1, len(before) + 2))
        assert history[0]["settings"] == {"image": original["platform:image"]["ref"], "min_replicas": 2,
                                          "max_replicas": 4}
        assert history[-1]["settings"]["min_replicas"] == 3 and history[-1]["settings"]["max_replicas"] == 5
        assert all(u["result"] == "succeeded" and u["kind"] == "update" for u in history)
        assert history[-1]["message"] == "scale to min 3, max 5"
        text = op.platform("history", SERVICE).stdout
        assert f"{len(history):>4}  update   succeeded" in text and "min_replicas=3, max_replicas=5" in text
    finally:
        op.restore(SERVICE)


def test_roll_forward_puts_the_earlier_image_and_replicas_back(op: Operator, deployed):
    original = stack_config(SERVICE)
    good = op.history(SERVICE)[-1]["version"]  # the update that applied the stack file as it is
    op.set(SERVICE, "platform:image.ref", NEW_IMAGE)
    op.platform("up", SERVICE, "--yes")
    op.rolled_out(SERVICE)
    assert op.image(SERVICE) == NEW_IMAGE
    try:
        dry = op.platform("rollback", SERVICE, "--to", str(good), "--dry-run")
        assert f"+    ref: {original['platform:image']['ref']}" in dry.stdout, dry.stdout
        assert "update kubernetes:apps/v1:Deployment api-gateway-deployment" in dry.stdout
        assert op.image(SERVICE) == NEW_IMAGE

        op.platform("rollback", SERVICE, "--to", str(good), "--yes")
        op.rolled_out(SERVICE)
        assert op.image(SERVICE) == original["platform:image"]["ref"]
        assert op.hpa(SERVICE)["minReplicas"] == original["platform:scaling"]["min_replicas"]
        # The stack file says what runs again, secrets and comments included (as the engine reads
        # it: `pulumi config set` rewrote top-level numbers as strings, which mean the same).
        assert read_stack_config(SERVICE, op.ws.root).config == read_stack_config(SERVICE, REPO_ROOT).config
        assert "# The AI Worker, on Cloudflare's edge" in op.stack_file(SERVICE).read_text()
        assert op.no_changes(SERVICE)
        assert op.history(SERVICE)[-1]["message"] == f"rollback to update {good}"
    finally:
        op.restore(SERVICE)


def _state_image(op: Operator, stack: str) -> str:
    state = op.ws.export(stack)
    for resource in state["deployment"]["resources"]:
        if resource["type"] == "kubernetes:apps/v1:Deployment":
            return resource["outputs"]["spec"]["template"]["spec"]["containers"][0]["image"]
    raise AssertionError("no Deployment in the state")


def test_state_only_rollback_restores_the_state_and_leaves_the_cluster(op: Operator, deployed):
    op.set(SERVICE, "platform:image.ref", NEW_IMAGE)  # an update whose state to go back to
    op.platform("up", SERVICE, "--yes")
    op.restore(SERVICE)
    image_update = [u["version"] for u in op.history(SERVICE) if u["settings"]["image"] == NEW_IMAGE][-1]
    live = op.image(SERVICE)
    generation = op.deployment(SERVICE)["metadata"]["generation"]

    result = op.platform("rollback", SERVICE, "--to", str(image_update), "--state-only", "--yes")

    assert f"state restored to the one update {image_update} wrote. The cluster has not changed" in result.stdout
    assert _state_image(op, SERVICE) == NEW_IMAGE
    assert op.image(SERVICE) == live and op.deployment(SERVICE)["metadata"]["generation"] == generation
    # The next update with a refresh reads the cluster back and applies the configuration.
    op.platform("up", SERVICE, "--refresh", "--yes")
    assert _state_image(op, SERVICE) == live
    assert op.deployment(SERVICE)["metadata"]["generation"] == generation
    assert op.no_changes(SERVICE)


def test_a_rollback_to_a_version_that_does_not_exist_is_refused(op: Operator, deployed):
    count = len(op.history(SERVICE))
    output = refused(op, "rollback", SERVICE, "--to", "99", "--yes")
    assert f"stack '{SERVICE}' has no update 99 (its updates are 1 to {count}" in output
    assert len(op.history(SERVICE)) == count


def test_drift_is_reported_with_exit_2_and_repaired_by_up_refresh(op: Operator, deployed):
    ns = namespace_of("staging", op.ws.root)
    policy = path_for("networking.k8s.io/v1", "NetworkPolicy", "allow-dns-egress", ns)
    quota = path_for("v1", "ResourceQuota", "quota", ns)
    wanted = op.kube.get(quota)["spec"]["hard"]["pods"]
    op.kube.delete(policy)
    op.kube.merge_patch(quota, {"spec": {"hard": {"pods": "999"}}})

    drift = op.platform("drift", "staging", check=False)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "kubernetes:networking.k8s.io/v1:NetworkPolicy staging-allow-dns-egress is gone" in drift.stdout, drift.stdout
    assert "kubernetes:core/v1:ResourceQuota staging-quota differs" in drift.stdout
    assert "spec.hard.pods: live '999'" in drift.stdout
    assert op.platform("drift", "--all", check=False).returncode == 2

    op.platform("up", "staging", "--refresh", "--yes")
    assert op.kube.exists(policy) and op.kube.get(quota)["spec"]["hard"]["pods"] == wanted
    clean = op.platform("drift", "--all")
    assert all(f"{s}: clean" in clean.stdout for s in KUBERNETES_STACKS), clean.stdout


def _start(op: Operator, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ops", *args], cwd=op.ws.root,
                            env={**op.ws.env(), "PYTHONPATH": str(op.ws.root)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cli_of(process: subprocess.Popen) -> int | None:
    """The pid of the `pulumi` CLI a `platform` process runs, if it runs one now."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == process.pid and \
                os.path.basename(cmdline[0]) == b"pulumi" and b"up" in cmdline:
            return int(proc.name)
    return None


def test_of_two_concurrent_updates_of_one_stack_one_is_refused_and_nothing_is_lost(op: Operator, deployed):
    # The engine's history lists the latest updates only (ten): count by version.
    last = op.history(SERVICE)[-1]["version"]
    op.set(SERVICE, "platform:env.LOG_LEVEL", "info")
    first = _start(op, "up", SERVICE, "--yes")
    try:
        # The program starts and previews before the lock shows: minutes on a loaded machine.
        cli = wait_for("the first update to take the lock", lambda: _locked(op, SERVICE) and _cli_of(first),
                       timeout=600, interval=0.1)
    except BaseException:
        first.communicate(timeout=600)  # never leave its lock to the next test
        raise
    # Hold the first update where it is (lock taken, changes under way) while the second
    # tries, so that the two overlap whatever the machine's speed.
    os.kill(cli, signal.SIGSTOP)
    try:
        second = op.platform("up", SERVICE, "--yes", check=False)
    finally:
        os.kill(cli, signal.SIGCONT)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, out + err
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"stack '{SERVICE}' is locked by " in second.stderr and "Traceback" not in second.stderr
    history = op.history(SERVICE)
    assert history[-1]["version"] == last + 1 and history[-1]["result"] == "succeeded"
    env = {e["name"]: e.get("value") for e in op.deployment(SERVICE)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LOG_LEVEL"] == "info"
    assert op.no_changes(SERVICE)
    op.restore(SERVICE)


def _locked(op: Operator, stack: str) -> bool:
    """Whether the stack's lock is taken, read from the backend's objects as `platform` reads it."""
    with mock.patch.dict(os.environ, op.ws.extra_env):
        store = open_store(op.ws.backend_url or f"file://{op.ws.backend}")
        return bool(StackState(store, "platform", stack).locks())


def test_concurrent_updates_of_two_stacks_both_succeed(op: Operator, deployed):
    for stack in (SERVICE, OTHER_SERVICE):
        op.set(stack, "platform:env.LOG_LEVEL", "warn")
    started = time.monotonic()
    runs = [_start(op, "up", stack, "--yes") for stack in (SERVICE, OTHER_SERVICE)]
    outputs = [run.communicate(timeout=600) for run in runs]
    FIGURES[f"two stacks updated concurrently ({op.backend})"] = f"{time.monotonic() - started:.1f}s"
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, out + err
    for stack in (SERVICE, OTHER_SERVICE):
        env = {e["name"]: e.get("value") for e in op.deployment(stack)["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["LOG_LEVEL"] == "warn", stack
    for stack in (SERVICE, OTHER_SERVICE):
        op.restore(stack)


def test_an_update_killed_mid_rollout_is_detected_and_recovered(op: Operator, deployed):
    generation = op.deployment(SERVICE)["metadata"]["generation"]
    op.set(SERVICE, "platform:image.ref", NEW_IMAGE)
    update = _start(op, "up", SERVICE, "--yes")
    cli = wait_for("the update's CLI", lambda: _cli_of(update), timeout=60)
    wait_for("the roll-out to start", lambda: op.deployment(SERVICE)["metadata"]["generation"] > generation,
             timeout=120, interval=0.05)
    os.kill(cli, signal.SIGKILL)
    update.communicate(timeout=120)
    assert update.returncode != 0

    output = refused(op, "up", SERVICE, "--yes")
    assert f"stack '{SERVICE}' is locked by" in output and f"`platform recover {SERVICE}`" in output

    recovered = op.platform("recover", SERVICE)
    assert "removed the stale lock of" in recovered.stdout, recovered.stdout
    # Killed while the provider awaited the roll-out: the state recorded the update as pending.
    assert "cleared 1 pending operation(s) (updating api-gateway-deployment)" in recovered.stdout, recovered.stdout
    assert "Traceback" not in recovered.stdout + recovered.stderr

    op.platform("up", SERVICE, "--yes")
    op.rolled_out(SERVICE)
    assert op.image(SERVICE) == NEW_IMAGE
    problems = {}
    for expected in _rendered(op, SERVICE):
        if expected["kind"] == "Secret":
            continue  # compared as keys by test_kubernetes_stacks; values are secret
        found = differences(expected, op.kube.get(object_path(expected)), expected["kind"])
        if found:
            problems[object_path(expected)] = found
    assert not problems, json.dumps(problems, indent=2)
    assert op.no_changes(SERVICE)
    op.restore(SERVICE)


def test_an_environment_is_not_destroyed_under_live_components(op: Operator, deployed):
    output = refused(op, "destroy", "staging", "--yes")
    assert f"still have resources: {SERVICE} (" in output
    assert op.kube.exists(f"/api/v1/namespaces/{namespace_of('staging', op.ws.root)}")
    assert op.deployment(SERVICE)["metadata"]["name"] == "api-gateway"


def test_destroy_components_then_environments(op: Operator, tmp_path):
    own = Operator(op.backend, op.workspace_of_its_own(tmp_path, "destroy"), op.kube, op.cluster, op.store)
    deploy_stacks(own.ws, own.kube, KUBERNETES_STACKS, lambda stack: own.platform("up", stack, "--yes").stderr)
    for stack in SERVICES + ENVIRONMENTS:
        own.platform("destroy", stack, "--yes")
    for env in ENVIRONMENTS:
        namespace = namespace_of(env, own.ws.root)
        wait_for(f"namespace {namespace} to go",
                 lambda: not own.kube.exists(f"/api/v1/namespaces/{namespace}"), timeout=120)
    rows = {r["stack"]: r["last_update"] for r in json.loads(own.platform("stacks", "--json").stdout)}
    assert all(rows[s]["kind"] == "destroy" for s in KUBERNETES_STACKS), rows


def test_the_overhead_of_platform_against_the_raw_cli(op: Operator, tmp_path):
    """Figures, not assertions: `platform` against the `pulumi` command it wraps (with the
    project's policy pack, which `platform` runs by default), on an environment of its own."""
    own = Operator(op.backend, op.workspace_of_its_own(tmp_path, "overhead"), op.kube, op.cluster, op.store)
    own.platform("up", "staging", "--yes")
    pack = ["--policy-pack", "policy"] if (own.ws.root / "policy" / "PulumiPolicy.yaml").exists() else []
    pairs = {
        "preview": (lambda: own.platform("preview", "staging"), ["preview", "-s", "staging", *pack]),
        # The raw command with every check platform's keeps: the pack's preview before applying.
        "up": (lambda: own.platform("up", "staging", "--yes"), ["up", "--yes", "-s", "staging", *pack]),
        "history": (lambda: own.platform("history", "staging"), ["stack", "history", "-s", "staging"]),
        "drift": (lambda: own.platform("drift", "staging"),
                  ["preview", "--refresh", "--expect-no-changes", "-s", "staging"]),
    }
    figures = {}
    for name, (ours, raw) in pairs.items():
        started = time.monotonic()
        ours()
        mine = time.monotonic() - started
        theirs = own.raw(*raw)
        figures[name] = f"{mine:.1f}s vs {theirs:.1f}s ({mine / max(theirs, 0.1):.2f}x)"
    FIGURES[f"platform vs pulumi ({op.backend})"] = json.dumps(figures)
    own.platform("destroy", "staging", "--yes")
