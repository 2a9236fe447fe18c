"""Stack names decide what a stack is; anything else is refused with the list of valid stacks."""
from __future__ import annotations

import pytest

from infra.errors import UnknownStackError
from infra.mock_engine import StackRun, run_stack
from infra.stack_files import StackConfigFile
from infra.stacks import StackName, discover_stacks, parse_stack_name

from tests.conftest import ALL_STACKS


def test_every_stack_file_in_the_repository_is_a_valid_stack():
    assert set(ALL_STACKS) >= {"staging", "production", "api-gateway.staging",
                               "api-gateway.production", "ai-worker.staging",
                               "ai-worker.production"}
    for stack in ALL_STACKS:
        parse_stack_name(stack)


def test_environment_stacks_are_listed_before_component_stacks():
    stacks = discover_stacks()
    assert stacks[:2] == ["production", "staging"]


@pytest.mark.parametrize("name, expected", [
    ("staging", StackName(env="staging")),
    ("api-gateway.production", StackName(env="production", component="api-gateway")),
])
def test_stack_name_says_environment_or_component(name, expected):
    assert parse_stack_name(name) == expected
    assert str(expected) == name


@pytest.mark.parametrize("name, reason", [
    ("Api-Gateway.staging", "malformed stack name"),
    ("a.b.staging", "malformed stack name"),
    ("api-gateway.", "malformed stack name"),
    ("qa", "unknown environment 'qa'"),
    ("api-gateway.qa", "unknown environment 'qa'"),
    ("billing.staging", "no stack config file Pulumi.billing.staging.yaml"),
])
def test_bad_stack_names_are_refused_with_the_valid_stacks_listed(name, reason):
    with pytest.raises(UnknownStackError) as caught:
        parse_stack_name(name)
    message = str(caught.value)
    assert message.startswith(f"stack '{name}': {reason}")
    assert "Valid stacks: " + ", ".join(sorted(ALL_STACKS)) in message


def test_an_unknown_stack_registers_nothing():
    attempt = StackRun(stack="billing.staging")
    with pytest.raises(UnknownStackError):
        run_stack("billing.staging", StackConfigFile(config={}, secret_keys=[]), run=attempt)
    assert attempt.resources == []
