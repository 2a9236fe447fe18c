"""Stack names: `<env>` is an environment stack, `<component>.<env>` a component stack.

The stack files in the project root (`Pulumi.<stack>.yaml`) are the list of valid stacks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pulumi
import yaml

from infra import stack_yaml
from infra.errors import StackFileError, UnknownStackError

# This checkout: the project whose code this is, and the default project of every function here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_NAMESPACE = "platform"
ENVIRONMENTS = ("staging", "production")
_LABEL = r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?"
_STACK_RE = re.compile(rf"^(?:(?P<component>{_LABEL})\.)?(?P<env>{_LABEL})$")


def project_root() -> Path:
    """The project the program runs for: the folder of the Pulumi.yaml the engine names (the
    CLI and the mock engine both do); outside any engine, this checkout. Stack files and the
    paths stack configs hold (bundles, mounted files, build contexts) are relative to it."""
    given = pulumi.get_root_directory()
    if given and (Path(given) / "Pulumi.yaml").is_file():
        return Path(given)
    return PROJECT_ROOT


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


def load_stack_file(stack: str, root: Path = PROJECT_ROOT) -> dict:
    """The parsed stack config file, or one StackFileError saying what is wrong with it."""
    path = stack_file(stack, root)
    try:
        document = stack_yaml.load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise StackFileError(stack, f"{path.name} is not valid YAML{where}: {problem}") from None
    except stack_yaml.TooLarge as error:
        raise StackFileError(stack, f"{path.name} {error}") from None
    except UnicodeDecodeError:
        raise StackFileError(stack, f"{path.name} is not UTF-8 text") from None
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise StackFileError(stack, f"{path.name} must be a mapping with a `config:` mapping")
    return document


def declares_config(stack: str, root: Path = PROJECT_ROOT) -> bool:
    """Whether the stack file sets any `platform:` key (`pulumi stack init` leaves it with none)."""
    config = load_stack_file(stack, root).get("config") or {}
    return any(str(key).startswith(CONFIG_NAMESPACE + ":") for key in config)


def valid_stacks(root: Path = PROJECT_ROOT) -> list[str]:
    """The stacks to offer an operator: files that set `platform:` keys, and broken ones (their
    own error says what to mend)."""
    def valid(stack: str) -> bool:
        try:
            return declares_config(stack, root)
        except StackFileError:
            return True
    return [s for s in discover_stacks(root) if valid(s)]


def parse_stack_name(stack: str, root: Path = PROJECT_ROOT) -> StackName:
    """Parse and check a stack name against the environments and the stack files present."""
    match = _STACK_RE.match(stack)
    if not match:
        raise UnknownStackError(stack, "malformed stack name (expected '<env>' or "
                                       "'<component>.<env>', lower-case)", valid_stacks(root))
    name = StackName(env=match["env"], component=match["component"])
    if name.env not in ENVIRONMENTS:
        raise UnknownStackError(stack, f"unknown environment '{name.env}' (environments: "
                                       f"{', '.join(ENVIRONMENTS)})", valid_stacks(root))
    path = stack_file(stack, root)
    if not path.exists():
        raise UnknownStackError(stack, f"no stack config file {path.name}", valid_stacks(root))
    if not declares_config(stack, root):  # a broken file raises StackFileError here
        raise UnknownStackError(
            stack, f"{path.name} sets no {CONFIG_NAMESPACE}: keys (`pulumi stack init` creates it "
                   f"so; start from the stack file of a component of the same kind)", valid_stacks(root))
    return name
