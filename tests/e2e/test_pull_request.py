"""A pull request played through the way the workflows play it, on the real engine.

In a git repository made from a copy of the project, with every Kubernetes stack deployed from
`main` on a local cluster of its own: a branch commits a new image digest in the gateway's
staging stack file and a change under apps/api-gateway/; `platform affected --base main`
names the stacks; `platform preview` of each (environments first, in parallel, as the preview
workflow's matrix jobs run them) gives the engine's plan; `platform preview-comment` posts one
comment per stack to a GitHub stand-in. Then the deploy workflow's sequence runs: staging
before production. Also timed: a diff to its comments, for one stack and for every Kubernetes
stack previewed in parallel.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from ops.preview_comment import marked_stack
from tests.conftest import stacks_of_kind
from tests.e2e.conftest import FIGURES, kubernetes_contexts
from tests.e2e.harness import E2E_BUILD, REPO_ROOT, Workspace, secure_paths
from tests.ops.conftest import GIT_IDENTITY, GitHubStandIn
from tools.cluster import Cluster
from tools.cluster.kube import Kube, path_for

ENVIRONMENTS = ["staging", "production"]
SERVICES = stacks_of_kind("go-service")
KUBERNETES_STACKS = ENVIRONMENTS + SERVICES
SERVICE = "api-gateway.staging"
NEW_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "9e" * 32
PULL_REQUEST = 42


def config_of(stack: str) -> dict:
    return (yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config") or {}


def namespace_of(stack: str) -> str:
    return config_of(stack.split(".")[-1])["platform:namespace"]


@dataclass
class PullRequest:
    ws: Workspace
    kube: Kube
    github: GitHubStandIn
    secrets: list[str] = field(default_factory=list)
    broken: str | None = None

    def git(self, *args: str) -> str:
        result = subprocess.run(["git", *args], cwd=self.ws.root, capture_output=True, text=True,
                                env={**os.environ, **GIT_IDENTITY})
        assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
        return result.stdout.strip()

    def platform(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.ws.platform(*args, check=check, env=self.github.environment())

    def image(self, stack: str) -> str:
        deployment = self.kube.get(path_for("apps/v1", "Deployment", stack.split(".")[0], namespace_of(stack)))
        return deployment["spec"]["template"]["spec"]["containers"][0]["image"]

    def affected(self, base: str = "main") -> dict:
        return json.loads(self.platform("affected", "--base", base, "--json").stdout)

    def preview_and_comment(self, stack: str, head: str) -> str:
        """What a preview job runs for one stack: `platform preview --json`, then the comment."""
        preview = self.ws.root.parent / f"preview-{stack}.json"
        result = self.platform("preview", stack, "--json", check=False)
        preview.write_text(result.stdout)
        self.platform("preview-comment", str(preview), "--stack", stack, "--commit", head,
                      "--policy-pack", "policy", "--post", "--pr", str(PULL_REQUEST))
        return result.stdout

    def preview_all(self, result: dict, head: str) -> float:
        """The preview workflow: environment stacks in parallel, then component stacks in
        parallel; the seconds from the diff to the last comment."""
        started = time.monotonic()
        for group in ("environments", "components"):
            stacks = [entry["stack"] for entry in result["matrix"][group]]
            with ThreadPoolExecutor(max_workers=max(1, len(stacks))) as pool:
                list(pool.map(lambda s: self.preview_and_comment(s, head), stacks))
        return round(time.monotonic() - started, 1)

    def comments(self) -> dict[str, str]:
        return {marked_stack(c["body"]): c["body"] for c in self.github.comments.get(PULL_REQUEST, [])}


@pytest.fixture(scope="module")
def pr(toolchain, tmp_path_factory):
    base = tmp_path_factory.mktemp("pull-request")
    cluster = Cluster(directory=E2E_BUILD / "cluster-pull-request", contexts=kubernetes_contexts())
    cluster.start()
    github = GitHubStandIn()
    threading.Thread(target=github.serve_forever, daemon=True).start()
    try:
        ws = Workspace.create(base, cluster.kubeconfig)
        state = PullRequest(ws, cluster.client(), github)
        state.git("init", "-q", "-b", "main")
        (ws.root / ".git" / "info").mkdir(exist_ok=True)
        (ws.root / ".git" / "info" / "exclude").write_text(".venv\n")
        state.git("add", "-A")
        state.git("commit", "-q", "-m", "main, as deployed")
        yield state
    finally:
        github.shutdown()
        github.server_close()
        cluster.stop()


FOUNDATION = ("test_main_is_deployed", "test_the_change_is_committed_on_a_branch")


@pytest.fixture(autouse=True)
def _foundation(request, pr: PullRequest):
    if pr.broken:
        pytest.fail(f"not run: {pr.broken} failed, and this step builds on it")
    yield
    if request.node.originalname in FOUNDATION and getattr(request.node, "failed_call", False):
        pr.broken = request.node.originalname


def test_main_is_deployed(pr: PullRequest):
    for stack in KUBERNETES_STACKS:
        pr.platform("up", stack, "--yes", "--message", "deploy main")
        for path in secure_paths(config_of(stack)):
            value = pr.ws.pulumi("config", "get", "--path", "-s", stack, path).stdout.strip()
            assert value
            pr.secrets.append(value)
    assert pr.image(SERVICE) == config_of(SERVICE)["platform:image"]["ref"]
    # Creating a passphrase stack writes its salt into its stack file; a team commits that once.
    changed = pr.git("status", "--porcelain").splitlines()
    assert all(line.split()[-1].startswith("Pulumi.") for line in changed), changed
    pr.git("commit", "-q", "-am", "the stacks' encryption salts", "--allow-empty")


def test_the_change_is_committed_on_a_branch(pr: PullRequest):
    pr.git("checkout", "-q", "-b", "new-image")
    stack_file = pr.ws.root / f"Pulumi.{SERVICE}.yaml"
    old = config_of(SERVICE)["platform:image"]["ref"]
    stack_file.write_text(stack_file.read_text().replace(old, NEW_IMAGE))
    main_go = pr.ws.root / "apps" / "api-gateway" / "main.go"
    main_go.write_text(main_go.read_text() + "\n// The gateway, built for the new image.\n")
    pr.git("commit", "-q", "-am", "api-gateway: new image in staging")


def test_affected_names_the_gateway_stacks_and_nothing_else(pr: PullRequest):
    result = pr.affected()
    # components of an earlier environment first: the order the deploy promotes them in
    assert [s["stack"] for s in result["stacks"]] == ["api-gateway.staging", "api-gateway.production"]
    assert result["removed"] == []
    assert [(e["stack"], e["after"]) for e in result["matrix"]["production-components"]] == [
        ("api-gateway.production", "api-gateway.staging")]


def test_each_affected_stack_gets_one_comment_showing_only_the_image_update(pr: PullRequest):
    result = pr.affected()
    head = pr.git("rev-parse", "HEAD")
    seconds = pr.preview_all(result, head)
    comments = pr.comments()
    assert sorted(comments) == sorted(SERVICES)  # exactly the affected stacks, one comment each

    staging = comments[SERVICE]
    rows = [line for line in staging.splitlines() if line.startswith("| ") and "`kubernetes:" in line]
    assert len(rows) == 1 and "`kubernetes:apps/v1:Deployment`" in rows[0] and "~ update" in rows[0], staging
    assert "**0** to create · **1** to update · **0** to replace · **0** to delete" in staging
    assert f"→ `{NEW_IMAGE}`" in staging and "spec.template.spec.containers[0].image" in staging
    assert "No changes" in comments["api-gateway.production"]
    for body in comments.values():
        assert "Policy pack `policy`: no violations." in body or "**Policy results**" in body
        for secret in pr.secrets:
            assert secret not in body
    FIGURES["pull request: diff to comments, the 2 gateway stacks in parallel"] = f"{seconds}s"


def test_a_re_run_edits_the_same_comments(pr: PullRequest):
    before = {c["id"] for c in pr.github.comments[PULL_REQUEST]}
    pr.preview_and_comment(SERVICE, pr.git("rev-parse", "HEAD"))
    assert {c["id"] for c in pr.github.comments[PULL_REQUEST]} == before


def test_the_deploy_sequence_puts_staging_before_production(pr: PullRequest):
    pr.git("checkout", "-q", "main")
    pr.git("merge", "-q", "--ff-only", "new-image")
    result = pr.affected("HEAD~1")
    commit = pr.git("rev-parse", "HEAD")
    deployed = []
    for env in ENVIRONMENTS:  # the deploy workflow's jobs, in order
        for group in (f"{env}-environment", f"{env}-components"):
            for entry in result["matrix"][group]:
                assert not entry["after"] or entry["after"] in deployed, f"{entry['stack']} before {entry['after']}"
                pr.platform("up", entry["stack"], "--yes", "--message", f"deploy {commit}")
                deployed.append(entry["stack"])
    assert deployed == ["api-gateway.staging", "api-gateway.production"]
    assert pr.image(SERVICE) == NEW_IMAGE
    assert pr.image("api-gateway.production") == config_of("api-gateway.production")["platform:image"]["ref"]


def test_time_from_a_diff_to_the_comments(pr: PullRequest):
    """One stack alone, then every Kubernetes stack (a change to a module they all import)."""
    pr.git("checkout", "-q", "-b", "timed-one")
    stack_file = pr.ws.root / f"Pulumi.{SERVICE}.yaml"
    stack_file.write_text(stack_file.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: info"))
    pr.git("commit", "-q", "-am", "staging logs less")
    started = time.monotonic()
    result = pr.affected("main")
    assert [s["stack"] for s in result["stacks"]] == [SERVICE]
    pr.preview_all(result, pr.git("rev-parse", "HEAD"))
    FIGURES["pull request: diff to comment, one stack"] = f"{round(time.monotonic() - started, 1)}s"

    pr.git("checkout", "-q", "main")
    pr.git("checkout", "-q", "-b", "timed-all")
    module = pr.ws.root / "components" / "kubernetes_objects.py"
    module.write_text(module.read_text() + "\n# Every Kubernetes stack imports this module.\n")
    pr.git("commit", "-q", "-am", "touch every Kubernetes stack")
    started = time.monotonic()
    result = pr.affected("main")
    assert sorted(s["stack"] for s in result["stacks"]) == sorted(KUBERNETES_STACKS)
    pr.preview_all(result, pr.git("rev-parse", "HEAD"))
    FIGURES[f"pull request: diff to comments, all {len(KUBERNETES_STACKS)} Kubernetes stacks in parallel"] = \
        f"{round(time.monotonic() - started, 1)}s"
    assert set(KUBERNETES_STACKS) <= set(pr.comments())
