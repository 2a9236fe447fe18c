"""The whole pack passes on every stack of the repository and of the minimal fixture project, as
the mock engine renders them, and it stands apart from the program it judges."""
from __future__ import annotations

import ast

import pytest

from infra.project import PROJECT_ROOT
from policy.pack import POLICIES

from tests.conftest import STACKS
from tests.policy.engine_view import pack_violations, stack_resources


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_every_stack_passes_the_whole_pack(renderers, stack):
    resources = stack_resources(renderers.run(stack))
    assert resources, "the stack registered nothing to judge"
    assert pack_violations(POLICIES, resources) == []


def test_the_pack_imports_nothing_from_the_program():
    # It must hold any stack to the rules, including one written without our components.
    for module in sorted((PROJECT_ROOT / "policy").glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in {"infra", "components", "ops"}, \
                    f"{module.name} imports {name}"


def test_every_policy_has_a_unique_name_and_a_description():
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    assert all(p.description for p in POLICIES)
