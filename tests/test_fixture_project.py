"""The minimal fixture project is a new team's first stacks: the repository's project file and
stack files that set only what their config models require. Every glob-based test runs over
it too (conftest.STACKS), so none can depend on a key the repository's examples happen to set."""
from __future__ import annotations

from infra.config.environment import EnvironmentConfig
from infra.config.go_service import GoServiceConfig
from infra.config.worker import WorkerConfig
from infra.stacks import PROJECT_ROOT, discover_stacks

from tests.conftest import FIXTURE_PROJECT, STACKS, Stack

# A Worker needs one way in besides its required keys (routes, custom_domains or workers_dev).
MODELS = {"environment": (EnvironmentConfig, set()), "go-service": (GoServiceConfig, set()),
          "cloudflare-worker": (WorkerConfig, {"routes"})}


def required_keys(model) -> set[str]:
    return {name for name, field in model.model_fields.items() if field.is_required()}


def test_the_fixture_project_is_the_repositorys_project():
    assert (FIXTURE_PROJECT / "Pulumi.yaml").read_text() == (PROJECT_ROOT / "Pulumi.yaml").read_text()


def test_the_fixture_has_a_stack_of_every_kind():
    fixture = [s for s in STACKS if s.root == FIXTURE_PROJECT]
    assert sorted(s.kind for s in fixture) == sorted(MODELS)
    assert len(fixture) == len(discover_stacks(FIXTURE_PROJECT))


def test_each_fixture_stack_sets_only_what_its_model_requires():
    for name in discover_stacks(FIXTURE_PROJECT):
        stack = Stack(name, FIXTURE_PROJECT)
        model, also = MODELS[stack.kind]
        keys = {key.split(":", 1)[1] for key in stack.config if key.startswith("platform:")}
        assert keys == required_keys(model) | also, name


def test_what_the_configs_point_at_lives_in_the_fixture():
    bundle = Stack("notify.staging", FIXTURE_PROJECT).configured("bundle")
    assert (FIXTURE_PROJECT / bundle).is_file()
    assert not (PROJECT_ROOT / bundle).exists()
