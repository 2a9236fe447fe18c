"""The project an operator works in: its root folder and the stacks its stack files declare."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from infra.stack_files import discover_stacks, read_stack_config
from infra.stacks import StackName, parse_stack_name, valid_stacks
from ops.errors import OpsError

ENVIRONMENT = "environment"


@dataclass(frozen=True)
class StackInfo:
    """A stack of the repository: its name, environment, component and kind."""

    name: str
    env: str
    component: str | None
    kind: str  # "environment", or the component stack's `platform:kind`

    @property
    def is_environment(self) -> bool:
        return self.component is None


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the working directory) holding Pulumi.yaml."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    raise OpsError(f"no Pulumi.yaml in {start} or any folder above it: run `platform` inside the "
                   "project (or pass --project-dir)")


@dataclass
class Project:
    root: Path

    @classmethod
    def at(cls, directory: str | os.PathLike | None = None) -> "Project":
        return cls(find_root(Path(directory) if directory else None))

    def stack(self, name: str) -> StackInfo:
        """The stack `name`, or the program's own refusal (malformed, unknown, no stack file)."""
        parsed = parse_stack_name(name, self.root)  # raises UnknownStackError / StackFileError
        return self._info(parsed)

    def _info(self, parsed: StackName) -> StackInfo:
        if parsed.is_environment:
            kind = ENVIRONMENT
        else:
            kind = read_stack_config(str(parsed), self.root).config.get("platform:kind", "")
        return StackInfo(name=str(parsed), env=parsed.env, component=parsed.component, kind=kind)

    @cached_property
    def stacks(self) -> list[StackInfo]:
        """Every valid stack of the repository, environment stacks first."""
        names = set(valid_stacks(self.root))
        return [self.stack(name) for name in discover_stacks(self.root) if name in names]

    def components_of(self, env: str) -> list[StackInfo]:
        """The component stacks of environment `env`."""
        return [s for s in self.stacks if not s.is_environment and s.env == env]

    def stack_file(self, name: str) -> Path:
        return self.root / f"Pulumi.{name}.yaml"
