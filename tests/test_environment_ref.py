"""A component stack reads its environment through the environment stack's outputs, awaited
with the SDK's public API before anything else is registered."""
from __future__ import annotations

import pytest

from infra.environment_ref import FORWARDED, REQUIRED
from infra.errors import PlatformError
from infra.stack_files import read_stack_config
from offline.mock_engine import StackRun, run_stack

from tests.conftest import stacks_of_kind

COMPONENT_STACKS = stacks_of_kind("go-service") + stacks_of_kind("cloudflare-worker")
SETTINGS = REQUIRED


def attempt(stack: str, environment_outputs: dict) -> tuple[PlatformError, StackRun]:
    run = StackRun(stack=stack)
    with pytest.raises(PlatformError) as caught:
        run_stack(stack, read_stack_config(stack), resolve_stack=lambda _: environment_outputs,
                  run=run)
    return caught.value, run


@pytest.mark.parametrize("stack", COMPONENT_STACKS)
def test_an_environment_never_deployed_is_named_and_nothing_is_registered(stack):
    error, run = attempt(stack, {})
    env = stack.split(".")[1]
    assert str(error) == (f"stack '{stack}': environment stack 'organization/platform/{env}' "
                          f"lacks output(s) {', '.join(SETTINGS)}: run `pulumi up -s {env}` first")
    assert [r.type for r in run.resources] == ["pulumi:pulumi:StackReference"]


@pytest.mark.parametrize("stack", COMPONENT_STACKS)
def test_an_environment_missing_one_output_names_that_output(repo_renderer, stack):
    outputs = dict(repo_renderer.run(stack.split(".")[1]).outputs)
    del outputs["kubernetes_context"]
    error, run = attempt(stack, outputs)
    assert "lacks output(s) kubernetes_context: run `pulumi up -s" in str(error)
    assert [r.type for r in run.resources] == ["pulumi:pulumi:StackReference"]


@pytest.mark.parametrize("stack", COMPONENT_STACKS)
def test_the_environments_outputs_reach_the_component(repo_renderer, stack):
    environment = repo_renderer.run(stack.split(".")[1]).outputs
    run = repo_renderer.run(stack)
    assert run.outputs["environment"] == environment["environment"]
    providers = [r for r in run.resources if r.type == "pulumi:providers:kubernetes"]
    for provider in providers:
        assert provider.inputs["context"] == environment["kubernetes_context"]


@pytest.mark.parametrize("stack", COMPONENT_STACKS)
def test_what_a_policy_needs_of_the_environment_is_passed_on_as_stack_outputs(repo_renderer, stack):
    """A stack validation sees the stack's outputs, never the StackReference they came from."""
    environment = repo_renderer.run(stack.split(".")[1]).outputs
    outputs = repo_renderer.run(stack).outputs
    for name in FORWARDED:
        assert outputs[f"environment_{name}"] == environment[name], name
