"""The minimal fixture project is a new team's first stacks: the repository's project file and
stack files that set only keys they cannot do without. Every glob-based test runs over
it too (conftest.STACKS), so none can depend on a key the repository's examples happen to set."""
from __future__ import annotations

import pytest

from infra.errors import ConfigError
from infra.project import PROJECT_ROOT
from infra.stack_files import discover_stacks, read_stack_config
from offline.mock_engine import StackRun, run_stack
from offline.render import Renderer

from tests.conftest import FIXTURE_PROJECT, STACKS, Stack

FIXTURE_STACKS = [s for s in STACKS if s.root == FIXTURE_PROJECT]


def test_the_fixture_project_is_the_repositorys_project():
    assert (FIXTURE_PROJECT / "Pulumi.yaml").read_text() == (PROJECT_ROOT / "Pulumi.yaml").read_text()


def test_the_fixture_has_a_stack_of_every_kind():
    """An environment, a Go service that calls nothing, a Worker with nothing to build and a
    Worker bundled from its source: the templates CONTRIBUTING.md tells a new team to copy."""
    assert sorted(s.kind for s in FIXTURE_STACKS) == ["cloudflare-worker", "cloudflare-worker",
                                                      "environment", "go-service"]
    assert len(FIXTURE_STACKS) == len(discover_stacks(FIXTURE_PROJECT))
    (service,) = [s for s in FIXTURE_STACKS if s.kind == "go-service"]
    assert not service.configured("peers") and not service.configured("monitoring")
    assert (FIXTURE_PROJECT / "apps" / service.component / "go.mod").is_file()
    assert sum((FIXTURE_PROJECT / "workers" / s.component / "package.json").is_file()
               for s in FIXTURE_STACKS if s.kind == "cloudflare-worker") == 1


@pytest.mark.parametrize("stack", FIXTURE_STACKS, ids=str)
def test_each_fixture_stack_sets_only_keys_it_cannot_do_without(stack):
    """Dropping any one `platform:` key the stack sets is refused by its config rules."""
    keys = [key for key in stack.config if key.startswith("platform:")]
    assert keys
    renderer = Renderer(root=FIXTURE_PROJECT)
    for key in keys:
        config = read_stack_config(stack.name, FIXTURE_PROJECT, overrides={key: None})
        with pytest.raises(ConfigError) as caught:
            run_stack(stack.name, config, resolve_stack=renderer._outputs_of,
                      run=StackRun(stack=stack.name), root=FIXTURE_PROJECT)
        assert key in str(caught.value), (key, str(caught.value))


def test_what_the_configs_point_at_lives_in_the_fixture():
    bundle = Stack("notify.staging", FIXTURE_PROJECT).configured("bundle")
    assert (FIXTURE_PROJECT / bundle).is_file()
    assert not (PROJECT_ROOT / bundle).exists()
