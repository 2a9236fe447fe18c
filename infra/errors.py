"""Operator-facing errors: one readable message, no traceback, nothing registered."""
from __future__ import annotations

from collections.abc import Iterable

import pulumi


class PlatformError(pulumi.RunError):
    """An error the operator can fix. `pulumi.RunError` makes the CLI print the message alone."""


class ConfigError(PlatformError):
    """Invalid stack config: every problem (key and reason) reported at once."""

    def __init__(self, stack: str, problems: Iterable[tuple[str, str]]):
        self.stack = stack
        self.problems = sorted(set(problems))
        lines = [f"stack '{stack}': invalid config ({len(self.problems)} problem"
                 f"{'' if len(self.problems) == 1 else 's'}):"]
        lines += [f"  - {key}: {reason}" for key, reason in self.problems]
        super().__init__("\n".join(lines))


class StackFileError(PlatformError):
    """A stack config file that cannot be read as one."""

    def __init__(self, stack: str, reason: str):
        self.stack = stack
        super().__init__(f"stack '{stack}': {reason}")


class UnknownStackError(PlatformError):
    """A stack name that is malformed or has no stack config file."""

    def __init__(self, stack: str, reason: str, valid: Iterable[str]):
        self.stack = stack
        names = ", ".join(sorted(valid)) or "(none)"
        super().__init__(f"stack '{stack}': {reason}. Valid stacks: {names}")
