"""Stack names: `<env>` is an environment stack, `<component>.<env>` a component stack.

The stack files in the project root (`Pulumi.<stack>.yaml`) are the list of valid stacks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from infra.errors import UnknownStackError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("staging", "production")
_LABEL = r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?"
_STACK_RE = re.compile(rf"^(?:(?P<component>{_LABEL})\.)?(?P<env>{_LABEL})$")


@dataclass(frozen=True)
class StackName:
    """A parsed stack name."""

    env: str
    component: str | None = None

    @property
    def is_environment(self) -> bool:
        return self.component is None

    def __str__(self) -> str:
        return self.env if self.component is None else f"{self.component}.{self.env}"


def stack_file(stack: str, root: Path = PROJECT_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def discover_stacks(root: Path = PROJECT_ROOT) -> list[str]:
    """Every stack that has a stack config file, environment stacks first."""
    names = [p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml")]
    return sorted(names, key=lambda n: ("." in n, n))


def parse_stack_name(stack: str, root: Path = PROJECT_ROOT) -> StackName:
    """Parse and check a stack name against the environments and the stack files present."""
    valid = discover_stacks(root)
    match = _STACK_RE.match(stack)
    if not match:
        raise UnknownStackError(stack, "malformed stack name (expected '<env>' or "
                                       "'<component>.<env>', lower-case)", valid)
    name = StackName(env=match["env"], component=match["component"])
    if name.env not in ENVIRONMENTS:
        raise UnknownStackError(stack, f"unknown environment '{name.env}' (environments: "
                                       f"{', '.join(ENVIRONMENTS)})", valid)
    if stack not in valid:
        raise UnknownStackError(stack, f"no stack config file {stack_file(stack, root).name}",
                                valid)
    return name
