"""`platform` for real on a file backend: the tests of tests/e2e/operator_command.py, in a
module of their own per backend (a module runs whole in one process: the two backends run side by
side)."""
from tests.e2e.operator_command import *  # noqa: F403 -- its tests and fixtures, collected here

BACKEND = "file"
