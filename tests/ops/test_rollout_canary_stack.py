"""The step actions of a Go service's rollout (ops.rollout.canary_stack): each weight written
into the stack file (its comments and layout kept) and applied by one update of that stack,
its message the decision; promotion and rollback as the stack file then says. The engine's
`up` is replaced here by a recorder of what it would apply (the stack file as written, the
update's message); tests/e2e/test_rollout.py runs the same actions through the real engine."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.stack_files import StackFileEditor
from ops.engine.session import Session
from ops.errors import OpsError
from ops.project import Project
from ops.rollout import canary_stack
from ops.rollout.canary_stack import CanaryStackSplit, promote_release, release_of, remove_release

STACK = "api-gateway.staging"
NEW_IMAGE = "registry.example.com/platform/api-gateway@sha256:" + "7c" * 32
COMMENT = "# Go-service stack: the api-gateway in staging. Owned by the gateway team."


def with_release(root: Path, weight: int = 0, **canary) -> Path:
    path = root / f"Pulumi.{STACK}.yaml"
    editor = StackFileEditor(path)
    editor.set("platform:canary", [], {**canary, "release": {"image": NEW_IMAGE, "weight": weight}})
    editor.write()
    return path


def config_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["config"]


@pytest.fixture
def applied(monkeypatch) -> list[tuple[str, dict]]:
    """(message, the stack file's config) of each update the split runs."""
    updates = []

    def apply_stack_file(session, info, stack_file, *, dry_run, yes, question, message):
        assert info.name == STACK and yes and not dry_run
        stack_file.write()
        updates.append((message, config_of(stack_file.path)))
        return {}

    monkeypatch.setattr(canary_stack, "apply_stack_file", apply_stack_file)
    return updates


def split_of(root: Path) -> CanaryStackSplit:
    session = Session(Project.at(root))
    return CanaryStackSplit(session, session.stack(STACK))


def test_a_step_writes_its_weight_and_updates_the_stack_once_with_the_decision(repo, applied):
    path = with_release(repo.root)
    split = split_of(repo.root)
    assert split.weight() == 0
    split.set_weight(50, "step 2/3: the new version takes 50 % of the traffic (analysis at "
                         "10 % passed: 120 requests)")
    ((message, config),) = applied
    assert message == ("platform rollout: canary 50% — step 2/3: the new version takes 50 % of "
                       "the traffic (analysis at 10 % passed: 120 requests)")
    assert config["platform:canary"]["release"] == {"image": NEW_IMAGE, "weight": 50}
    assert split.weight() == 50
    assert path.read_text().startswith(COMMENT)  # the file's comments kept


def test_the_same_weight_again_runs_no_update(repo, applied):
    with_release(repo.root, 10)
    split_of(repo.root).set_weight(10, "resumed")
    assert applied == []


def test_promotion_takes_all_traffic_then_makes_the_new_image_the_stable_one(repo, applied):
    path = with_release(repo.root, 50, window_seconds=60)
    split_of(repo.root).set_weight(100, "every step passed its analysis")
    (first, at_100), (second, promoted) = applied
    assert first == "platform rollout: canary 100% — every step passed its analysis"
    assert at_100["platform:canary"]["release"]["weight"] == 100
    assert second == (f"platform rollout: promote: {NEW_IMAGE} is the stable image, the canary "
                      f"release removed")
    assert promoted["platform:image"] == {"ref": NEW_IMAGE}
    assert promoted["platform:canary"] == {"window_seconds": 60}  # the settings stay
    assert config_of(path) == promoted


def test_rollback_sends_the_traffic_back_then_removes_the_release_stable_untouched(repo, applied):
    path = with_release(repo.root, 10)
    stable = config_of(path)["platform:image"]
    split = split_of(repo.root)
    split.set_weight(0, "analysis failed at 10 %: error ratio 5 % is above its limit 1.44 %")
    (first, at_0), (second, removed) = applied
    assert first == ("platform rollout: rollback: canary 0% — analysis failed at 10 %: error "
                     "ratio 5 % is above its limit 1.44 %")
    assert at_0["platform:canary"]["release"]["weight"] == 0
    assert second == ("platform rollout: rollback: the canary release removed, the stable "
                      "version unchanged")
    assert "platform:canary" not in removed  # nothing else was in it
    assert removed["platform:image"] == stable
    assert split.weight() == 0 and split.release() is None


def test_a_release_removed_under_the_rollout_is_refused(repo, applied):
    path = with_release(repo.root, 10)
    split = split_of(repo.root)
    editor = StackFileEditor(path)
    remove_release(editor)
    editor.write()
    with pytest.raises(OpsError, match="has no platform:canary.release any more"):
        split.set_weight(50, "step 2/3")
    assert applied == []


def test_promote_release_edits_keep_the_rest_of_the_file(repo):
    path = with_release(repo.root, 100)
    before = config_of(path)
    editor = StackFileEditor(path)
    assert release_of(editor) == {"image": NEW_IMAGE, "weight": 100}
    assert promote_release(editor) == NEW_IMAGE
    editor.write()
    after = config_of(path)
    assert after == {**{k: v for k, v in before.items() if k != "platform:canary"},
                     "platform:image": {"ref": NEW_IMAGE}}
    with pytest.raises(OpsError, match="no platform:canary.release to promote"):
        promote_release(StackFileEditor(path))


def test_the_quota_check_counts_a_canary_releases_pods(repo):
    """api-gateway is staging's one Go service (quota: 8 CPUs of limits, 1 a pod): at max 6, one
    surge pod fits; with a release's 2 (min_replicas) pods, 9 CPUs do not."""
    from infra.errors import ConfigError
    from ops.operator.config_change import check_quota
    from ops.stack_config import validated

    project = Project.at(repo.root)
    info = project.stack(STACK)
    scaling = {"min_replicas": 2, "max_replicas": 6}
    check_quota(project, info, validated(project, info, {"platform:scaling": scaling}))
    candidate = validated(project, info, {"platform:scaling": scaling, "platform:canary": {
        "release": {"image": NEW_IMAGE, "weight": 10}}})
    with pytest.raises(ConfigError, match="and a canary release's pods\\) would need limits.cpu "
                                          "9, above the environment's quota 8"):
        check_quota(project, info, candidate)
