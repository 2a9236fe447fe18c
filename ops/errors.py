"""Errors an operator can act on: one message, a non-zero exit code, no traceback."""
from __future__ import annotations


class OpsError(Exception):
    """A refusal or failure with a message that says what is wrong and what to do."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
