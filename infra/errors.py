"""Operator-facing errors: one readable message, no traceback, nothing registered."""
from __future__ import annotations

from collections.abc import Iterable

import pulumi


class PlatformError(pulumi.RunError):
    """An error the operator can fix. `pulumi.RunError` makes the CLI print the message alone."""

    def __init__(self, message: str):
        super().__init__(printable(message))


def printable(text: str, lines: bool = True) -> str:
    """The text with control characters escaped (\\x1b, \\x00; line breaks too unless `lines`):
    messages quote stack config, and a value must neither move the operator's cursor nor
    recolour their terminal, nor add a line that looks like another problem."""
    return "".join(c if c.isprintable() or (lines and c == "\n") else repr(c)[1:-1] for c in text)


class ConfigError(PlatformError):
    """Invalid stack config: every problem (key and reason) reported at once."""

    def __init__(self, stack: str, problems: Iterable[tuple[str, str]]):
        self.stack = stack
        self.problems = sorted(set(problems))
        lines = [f"stack '{stack}': invalid config ({len(self.problems)} problem"
                 f"{'' if len(self.problems) == 1 else 's'}):"]
        lines += [f"  - {printable(key, lines=False)}: {printable(reason, lines=False)}"
                  for key, reason in self.problems]
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
