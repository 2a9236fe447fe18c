"""The step actions of a Worker's rollout (ops.rollout.worker_split): each share written into the
stack file's `platform:rollout` (its comments and layout kept) and applied by one update of that
stack, its message the decision; which version is stable and which is new, read from the stack
file and the stack's outputs. The engine's `up` is replaced by a recorder of what it would apply
that leaves the outputs an update of the Worker leaves (a Cloudflare account is out of reach);
each stack file it applies is then rendered under Pulumi's mocks, and its WorkersDeployment
checked: the versions and their percentages."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from infra.stack_files import StackFileEditor
from offline.render import Renderer, graph
from ops.engine.session import Session
from ops.errors import OpsError
from ops.project import Project
from ops.rollout import canary_stack
from ops.rollout.worker_split import WorkerSplit, rollout_of, write_rollout

STACK = "ai-worker.staging"
BUNDLE = "workers/ai-worker/dist/worker.js"
STABLE = "3f2c1a9e-7b6d-4e5f-8a9b-0c1d2e3f4a5b"
NEW = "7d0e7a52-3b1c-4c52-9a61-2f4c8b1d9e01"
COMMENT = "# Worker stack: the ai-worker in staging. Owned by the AI team."
DEPLOYMENT = "cloudflare:index/workersDeployment:WorkersDeployment"
UPLOADED = "[unknown]"  # under the mocks, the version this update uploads: Cloudflare assigns its id


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class Stack:
    """The Worker stack's outputs as its state holds them, and the updates applied to it: an
    update uploads the bundle as a new version when the bundle changed (its id: `NEW`)."""

    def __init__(self, root: Path, deployed: bytes, version: str = STABLE):
        self.root = root
        self.outputs = {"version_id": version, "bundle_sha256": digest(deployed),
                        "script_name": "ai-worker-staging"}
        self.updates: list[tuple[str, dict]] = []

    def apply(self, session, info, stack_file, *, dry_run, yes, question, message):
        assert info.name == STACK and yes and not dry_run
        stack_file.write()
        bundle = (self.root / BUNDLE).read_bytes()
        if digest(bundle) != self.outputs["bundle_sha256"]:
            self.outputs = {**self.outputs, "version_id": NEW, "bundle_sha256": digest(bundle)}
        self.updates.append((message, yaml.safe_load(stack_file.path.read_text())["config"]))
        return dict(self.outputs)


@pytest.fixture
def stack(repo, monkeypatch) -> Stack:
    """ai-worker.staging serving version STABLE at 100 %, and a new bundle built since."""
    repo.write(BUNDLE, "export default { fetch() { return new Response('new'); } };\n")
    deployed = Stack(repo.root, b"export default { fetch() { return new Response('old'); } };\n")
    monkeypatch.setattr(canary_stack, "apply_stack_file", deployed.apply)
    return deployed


def split_of(root: Path, stack: Stack) -> WorkerSplit:
    session = Session(Project.at(root))
    return WorkerSplit(session, session.stack(STACK), outputs=lambda: stack.outputs)


def stack_file(root: Path) -> Path:
    return root / f"Pulumi.{STACK}.yaml"


def deployment(config: dict) -> list[tuple[str, int]]:
    """The versions and percentages of the WorkersDeployment this stack config renders to."""
    overrides = {"platform:rollout": config.get("platform:rollout", {"percentage": 100})}
    (resource,) = [r for r in graph(Renderer(overrides={STACK: overrides}).run(STACK))["resources"]
                   if r["type"] == DEPLOYMENT]
    return sorted(((v["versionId"], int(v["percentage"])) for v in resource["inputs"]["versions"]),
                  key=lambda v: (-v[1], v[0]))


def test_before_the_first_step_the_new_bundle_has_no_traffic_and_the_live_version_is_stable(
        repo, stack):
    split = split_of(repo.root, stack)
    assert split.new_bundle() and not split.in_progress()
    assert split.weight() == 0
    assert split.stable_version() == STABLE and split.new_version() is None


def test_a_rollout_step_by_step_writes_the_split_and_renders_it(repo, stack):
    split = split_of(repo.root, stack)
    split.set_weight(10, "step 1/3: the new version takes 10 % of the traffic")
    assert split.new_version() == NEW and split.stable_version() == STABLE
    assert split.weight() == 10 and split.in_progress()
    split.set_weight(50, "step 2/3: the new version takes 50 % of the traffic (analysis at 10 % "
                         "passed: 240 requests)")
    split.set_weight(100, "step 3/3: every step passed its analysis")
    messages = [message for message, _ in stack.updates]
    assert messages == [
        "platform rollout: new version 10% — step 1/3: the new version takes 10 % of the traffic",
        ("platform rollout: new version 50% — step 2/3: the new version takes 50 % of the traffic "
        "(analysis at 10 % passed: 240 requests)"),
        (f"platform rollout: promote: version {NEW} serves all traffic, {STABLE} none — step 3/3: "
        f"every step passed its analysis")]
    rollouts = [config["platform:rollout"] for _, config in stack.updates]
    assert rollouts == [{"percentage": 10, "stable_version_id": STABLE},
                        {"percentage": 50, "stable_version_id": STABLE},
                        {"percentage": 100}]
    assert stack_file(repo.root).read_text().startswith(COMMENT)  # the file's comments kept
    assert "# No platform:notifications here" in stack_file(repo.root).read_text()
    assert split.weight() == 100 and not split.new_bundle() and not split.in_progress()
    # What each written stack file deploys: the version this bundle is uploaded as, beside the
    # stable one, then alone.
    rendered = [deployment(config) for _, config in stack.updates]
    assert rendered == [[(STABLE, 90), (UPLOADED, 10)],
                        [(STABLE, 50), (UPLOADED, 50)],  # by share, then by id
                        [(UPLOADED, 100)]]


def test_a_rollback_serves_the_stable_version_alone_and_renders_it(repo, stack):
    split = split_of(repo.root, stack)
    split.set_weight(10, "step 1/3")
    split.set_weight(0, "analysis failed at 10 %: error ratio 5 % is above its limit 1.44 %")
    message, config = stack.updates[-1]
    assert message == (f"platform rollout: rollback: version {STABLE} serves all traffic, the new "
                       f"version none — analysis failed at 10 %: error ratio 5 % is above its "
                       f"limit 1.44 %")
    assert config["platform:rollout"] == {"rollback_to": STABLE}
    assert split.weight() == 0 and split.stable_version() == STABLE and not split.in_progress()
    assert deployment(config) == [(STABLE, 100)]


def test_the_next_rollout_after_a_rollback_starts_from_the_rolled_back_to_version(repo, stack):
    split = split_of(repo.root, stack)
    split.set_weight(10, "step 1/3")
    split.set_weight(0, "analysis failed")
    repo.write(BUNDLE, "export default { fetch() { return new Response('fixed'); } };\n")
    stack.outputs["version_id"] = NEW  # the rolled-back version is still the uploaded one
    assert split.new_bundle() and split.weight() == 0
    split.set_weight(10, "step 1/3")
    assert stack.updates[-1][1]["platform:rollout"] == {"percentage": 10, "stable_version_id": STABLE}


def test_the_same_share_again_runs_no_update(repo, stack):
    split = split_of(repo.root, stack)
    split.set_weight(10, "step 1/3")
    split.set_weight(10, "resumed")
    assert len(stack.updates) == 1


def test_a_stack_never_deployed_has_no_stable_version(repo, stack):
    stack.outputs = {}
    split = split_of(repo.root, stack)
    assert split.stable_version() is None and not split.new_bundle()
    with pytest.raises(OpsError, match="no stable version to split the traffic with"):
        split.set_weight(10, "step 1/3")
    assert stack.updates == []


def test_write_rollout_edits_key_by_key(repo):
    path = stack_file(repo.root)
    editor = StackFileEditor(path)
    write_rollout(editor, {"percentage": 10, "stable_version_id": STABLE})
    editor.write()
    assert rollout_of(StackFileEditor(path)) == {"percentage": 10, "stable_version_id": STABLE}
    editor = StackFileEditor(path)
    write_rollout(editor, {"rollback_to": STABLE})
    editor.write()
    text = path.read_text()
    assert rollout_of(StackFileEditor(path)) == {"rollback_to": STABLE}
    assert text.startswith(COMMENT) and "percentage" not in text
