"""A pull request played through the way the workflows play it, on the real engine.

In a git repository made from a copy of the project, with every Kubernetes stack deployed from
`main` on a local cluster of its own (the module's fixtures): a branch commits a new image
digest in the gateway's staging stack file and a change under apps/api-gateway/; `platform
affected --base main` names the stacks; `platform preview` of each (environments first, in
parallel, as the preview workflow's matrix jobs run them) gives the engine's plan; `platform
preview-comment` posts one comment per stack to a GitHub stand-in. Then the deploy workflow's
sequence runs: staging before production. Also timed: a diff to its comments, for one stack and
for every Kubernetes stack previewed in parallel. Each test checks out what it starts from,
posts to a pull request of its own, and puts back the cluster it changes.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from ops.reporting.comments import marked_stack
from tools.cluster import Cluster
from tools.cluster.kube import Kube, path_for

from tests.e2e.conftest import FIGURES, deploy_stacks, kubernetes_contexts
from tests.e2e.harness import (
    E2E_BUILD,
    KUBERNETES_STACKS,
    SERVICES,
    Workspace,
    namespace_of,
    secure_paths,
    stack_config,
)
from tests.ops.conftest import GIT_IDENTITY, GitHubStandIn

SERVICE = "api-gateway.staging"
NEW_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "9e" * 32
BRANCH = "new-image"


@dataclass
class PullRequest:
    ws: Workspace
    kube: Kube
    github: GitHubStandIn
    secrets: list[str] = field(default_factory=list)
    changed_before_salts: list[str] = field(default_factory=list)  # `git status` after deploying main

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

    def preview_and_comment(self, stack: str, head: str, number: int) -> str:
        """What a preview job runs for one stack: `platform preview --json`, then the comment."""
        preview = self.ws.root.parent / f"preview-{stack}.json"
        result = self.platform("preview", stack, "--json", check=False)
        preview.write_text(result.stdout)
        self.platform("preview-comment", str(preview), "--stack", stack, "--commit", head,
                      "--policy-pack", "policy", "--post", "--pr", str(number))
        return result.stdout

    def preview_all(self, result: dict, head: str, number: int) -> float:
        """The preview workflow: environment stacks in parallel, then component stacks in
        parallel; the seconds from the diff to the last comment."""
        started = time.monotonic()
        for group in ("environments", "components"):
            stacks = [entry["stack"] for entry in result["matrix"][group]]
            with ThreadPoolExecutor(max_workers=max(1, len(stacks))) as pool:
                list(pool.map(lambda s: self.preview_and_comment(s, head, number), stacks))
        return round(time.monotonic() - started, 1)

    def comments(self, number: int) -> dict[str, str]:
        return {marked_stack(c["body"]): c["body"] for c in self.github.comments.get(number, [])}


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


@pytest.fixture(scope="module")
def main_deployed(pr: PullRequest) -> PullRequest:
    """Every Kubernetes stack deployed from `main`, and the stacks' encryption salts committed."""
    deploy_stacks(pr.ws, pr.kube, KUBERNETES_STACKS,
                  lambda stack: pr.platform("up", stack, "--yes", "--message", "deploy main").stderr)
    for stack in KUBERNETES_STACKS:
        for path in secure_paths(stack_config(stack)):
            value = pr.ws.pulumi("config", "get", "--path", "-s", stack, path).stdout.strip()
            assert value
            pr.secrets.append(value)
    # Creating a passphrase stack writes its salt into its stack file; a team commits that once.
    pr.changed_before_salts = pr.git("status", "--porcelain").splitlines()
    pr.git("commit", "-q", "-am", "the stacks' encryption salts", "--allow-empty")
    return pr


@pytest.fixture(scope="module")
def branch(main_deployed: PullRequest) -> str:
    """The pull request's branch: a new image digest in the gateway's staging stack file and a
    change under apps/api-gateway/, committed on BRANCH; its head commit."""
    pr = main_deployed
    pr.git("checkout", "-q", "-b", BRANCH, "main")
    stack_file = pr.ws.root / f"Pulumi.{SERVICE}.yaml"
    old = stack_config(SERVICE)["platform:image"]["ref"]
    stack_file.write_text(stack_file.read_text().replace(old, NEW_IMAGE))
    main_go = pr.ws.root / "apps" / "api-gateway" / "main.go"
    main_go.write_text(main_go.read_text() + "\n// The gateway, built for the new image.\n")
    pr.git("commit", "-q", "-am", "api-gateway: new image in staging")
    head = pr.git("rev-parse", "HEAD")
    pr.git("checkout", "-q", "main")
    return head


def test_main_is_deployed(main_deployed: PullRequest):
    pr = main_deployed
    assert pr.image(SERVICE) == stack_config(SERVICE)["platform:image"]["ref"]
    assert all(line.split()[-1].startswith("Pulumi.") for line in pr.changed_before_salts), \
        pr.changed_before_salts


def test_affected_names_the_gateway_stacks_and_nothing_else(main_deployed: PullRequest, branch: str):
    pr = main_deployed
    pr.git("checkout", "-q", BRANCH)
    result = pr.affected()
    # components of an earlier environment first: the order the deploy promotes them in
    assert [s["stack"] for s in result["stacks"]] == ["api-gateway.staging", "api-gateway.production"]
    assert result["removed"] == []
    assert [(e["stack"], e["after"]) for e in result["matrix"]["production-components"]] == [
        ("api-gateway.production", "api-gateway.staging")]


def test_each_affected_stack_gets_one_comment_showing_only_the_image_update(
        main_deployed: PullRequest, branch: str):
    pr, number = main_deployed, 42
    pr.git("checkout", "-q", BRANCH)
    seconds = pr.preview_all(pr.affected(), branch, number)
    comments = pr.comments(number)
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


def test_a_re_run_edits_the_same_comments(main_deployed: PullRequest, branch: str):
    pr, number = main_deployed, 43
    pr.git("checkout", "-q", BRANCH)
    pr.preview_and_comment(SERVICE, branch, number)
    before = {c["id"] for c in pr.github.comments[number]}
    pr.preview_and_comment(SERVICE, branch, number)
    assert {c["id"] for c in pr.github.comments[number]} == before


def test_the_deploy_sequence_puts_staging_before_production(main_deployed: PullRequest, branch: str):
    pr = main_deployed
    # The merge, on a branch standing for main after it: main itself stays for the other tests.
    pr.git("checkout", "-q", "-b", "merged", "main")
    pr.git("merge", "-q", "--ff-only", BRANCH)
    result = pr.affected("HEAD~1")
    commit = pr.git("rev-parse", "HEAD")
    deployed = []
    try:
        for env in ("staging", "production"):  # the deploy workflow's jobs, in order
            for group in (f"{env}-environment", f"{env}-components"):
                for entry in result["matrix"][group]:
                    assert not entry["after"] or entry["after"] in deployed, f"{entry['stack']} before {entry['after']}"
                    pr.platform("up", entry["stack"], "--yes", "--message", f"deploy {commit}")
                    deployed.append(entry["stack"])
        assert deployed == ["api-gateway.staging", "api-gateway.production"]
        assert pr.image(SERVICE) == NEW_IMAGE
        assert pr.image("api-gateway.production") == stack_config("api-gateway.production")["platform:image"]["ref"]
    finally:  # main deployed again, as the other tests expect it
        pr.git("checkout", "-q", "main")
        pr.git("branch", "-q", "-D", "merged")
        for stack in deployed:
            pr.platform("up", stack, "--yes", "--message", "deploy main")
    assert pr.image(SERVICE) == stack_config(SERVICE)["platform:image"]["ref"]


def test_time_from_a_diff_to_the_comments(main_deployed: PullRequest):
    """One stack alone, then every Kubernetes stack (a change to a module they all import)."""
    pr = main_deployed
    pr.git("checkout", "-q", "-b", "timed-one", "main")
    stack_file = pr.ws.root / f"Pulumi.{SERVICE}.yaml"
    stack_file.write_text(stack_file.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: info"))
    pr.git("commit", "-q", "-am", "staging logs less")
    started = time.monotonic()
    result = pr.affected("main")
    assert [s["stack"] for s in result["stacks"]] == [SERVICE]
    pr.preview_all(result, pr.git("rev-parse", "HEAD"), 44)
    FIGURES["pull request: diff to comment, one stack"] = f"{round(time.monotonic() - started, 1)}s"

    pr.git("checkout", "-q", "-b", "timed-all", "main")
    module = pr.ws.root / "components" / "kubernetes_objects.py"
    module.write_text(module.read_text() + "\n# Every Kubernetes stack imports this module.\n")
    pr.git("commit", "-q", "-am", "touch every Kubernetes stack")
    started = time.monotonic()
    result = pr.affected("main")
    assert sorted(s["stack"] for s in result["stacks"]) == sorted(KUBERNETES_STACKS)
    pr.preview_all(result, pr.git("rev-parse", "HEAD"), 45)
    FIGURES[f"pull request: diff to comments, all {len(KUBERNETES_STACKS)} Kubernetes stacks in parallel"] = \
        f"{round(time.monotonic() - started, 1)}s"
    assert set(KUBERNETES_STACKS) <= set(pr.comments(45))
    pr.git("checkout", "-q", "main")
