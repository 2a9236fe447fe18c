"""Secrets stay secret end to end: every stack rendered with known secret values (as if the
stack files were decrypted) writes none of them into its files, graph.json, plain outputs or
logs, although each value reaches the resource that needs it."""
from __future__ import annotations

import json
import re

import pytest

from infra.secrets import SECRET_PLACEHOLDER
from infra.stack_files import StackConfigFile, read_stack_config
from offline.mock_engine import run_stack, unwrap_secrets
from offline.render import Renderer, write_stack

from tests.conftest import ALL_STACKS

STACKS_WITH_SECRETS = [s for s in ALL_STACKS if read_stack_config(s).secret_keys]


def with_known_secrets(stack: str) -> tuple[StackConfigFile, list[str]]:
    """The stack's config with each encrypted value replaced by a distinct known value."""
    config = read_stack_config(stack)
    values: list[str] = []

    def known(_match) -> str:
        values.append(f"known-secret-{stack}-{len(values)}-Zq8")
        return values[-1]

    replaced = dict(config.config)
    for key in config.secret_keys:
        replaced[key] = re.sub(re.escape(SECRET_PLACEHOLDER), known, replaced[key])
    return StackConfigFile(config=replaced, secret_keys=config.secret_keys), values


def test_there_are_stacks_with_secrets_to_check():
    assert STACKS_WITH_SECRETS


@pytest.mark.parametrize("stack", STACKS_WITH_SECRETS)
def test_no_secret_value_is_written_printed_or_output_in_plain_text(stack, tmp_path, capfd):
    renderer = Renderer()
    renderer.run(stack.split(".")[-1])  # the environment stack, rendered before capturing
    capfd.readouterr()
    config, values = with_known_secrets(stack)
    assert values, f"{stack} has secret keys but no secret value"

    run = run_stack(stack, config, resolve_stack=renderer._outputs_of)
    folder = write_stack(run, tmp_path)
    logs = capfd.readouterr()

    # Each value did reach the program and its resources (as a Pulumi secret) ...
    registered = json.dumps([unwrap_secrets(r.inputs) for r in run.resources], default=str)
    assert all(value in registered for value in values)
    # ... and shows nowhere in plain text.
    for path in sorted(folder.iterdir()):
        text = path.read_text()
        assert not [v for v in values if v in text], f"{path.name} holds a secret value"
    plain_outputs = {k: v for k, v in run.outputs.items() if k not in run.secret_outputs}
    assert not [v for v in values if v in json.dumps(plain_outputs)], "a plain output"
    assert not [v for v in values if v in logs.out + logs.err], "the program's output"
