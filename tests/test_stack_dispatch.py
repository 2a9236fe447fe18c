"""Stack names decide what a stack is; anything else is refused with the list of valid stacks."""
from __future__ import annotations

import re
import shutil

import pytest

from infra.errors import StackFileError, UnknownStackError
from infra.project import PROJECT_ROOT
from infra.stack_files import StackConfigFile, discover_stacks, read_stack_config
from infra.stacks import StackName, parse_stack_name
from offline.mock_engine import StackRun, run_stack

from tests.conftest import ALL_STACKS, FIXTURE_PROJECT, STACKS


def test_every_stack_file_in_the_repository_is_a_valid_stack():
    assert set(ALL_STACKS) >= {"staging", "production", "api-gateway.staging",
                               "api-gateway.production", "ai-worker.staging",
                               "ai-worker.production"}
    for stack in ALL_STACKS:
        parse_stack_name(stack)


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_the_stack_name_alone_says_what_a_stack_is(stack):
    name = parse_stack_name(stack.name, stack.root)
    assert (name.env, name.component) == (stack.env, stack.component)
    if name.is_environment:
        assert "platform:kind" not in stack.config
    else:
        assert stack.kind in ("go-service", "cloudflare-worker")


def test_a_project_lists_its_own_stacks():
    assert discover_stacks(FIXTURE_PROJECT) == ["staging", "billing.staging", "notify.staging",
                                               "search.staging"]
    with pytest.raises(UnknownStackError) as caught:
        parse_stack_name("api-gateway.staging", FIXTURE_PROJECT)
    assert str(caught.value).endswith("Valid stacks: billing.staging, notify.staging, search.staging, staging")


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


@pytest.fixture
def project_copy(tmp_path):
    """The project's Pulumi.yaml and stack files in a folder of their own."""
    for path in PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_a_stack_file_left_empty_by_stack_init_is_refused_and_not_listed_as_valid(project_copy):
    # What `pulumi stack init billing.staging` writes with the passphrase secrets provider.
    (project_copy / "Pulumi.billing.staging.yaml").write_text("encryptionsalt: v1:abc=:v1:def:ghi==\n")
    with pytest.raises(UnknownStackError) as caught:
        parse_stack_name("billing.staging", project_copy)
    message = str(caught.value)
    assert message.startswith("stack 'billing.staging': Pulumi.billing.staging.yaml sets no platform: keys")
    assert "Valid stacks: " + ", ".join(sorted(ALL_STACKS)) in message


@pytest.mark.parametrize("content, reason", [
    ("config:\n  platform:kind: go-service\n   platform:port: 8080\n",
     "Pulumi.billing.staging.yaml is not valid YAML (line 3, column 17): mapping values are not allowed here"),
    ("- just\n- a list\n", "Pulumi.billing.staging.yaml must be a mapping with a `config:` mapping"),
    ("config: [platform:kind]\n", "Pulumi.billing.staging.yaml must be a mapping with a `config:` mapping"),
])
def test_a_broken_stack_file_is_named_with_what_is_wrong(project_copy, content, reason):
    (project_copy / "Pulumi.billing.staging.yaml").write_text(content)
    with pytest.raises(StackFileError, match=re.escape(f"stack 'billing.staging': {reason}")):
        parse_stack_name("billing.staging", project_copy)
    with pytest.raises(StackFileError):
        read_stack_config("billing.staging", project_copy)
