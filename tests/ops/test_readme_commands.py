"""The README's table of `platform` commands says what the command accepts: every command the
parser has is in the table, and every option a row shows is one of that command's options."""
from __future__ import annotations

import argparse
import re

from infra.project import PROJECT_ROOT as REPO_ROOT
from ops.cli import build_parser

ROW = re.compile(r"^\| `platform ([a-z-]+)([^`]*)` \|", re.M)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def readme_rows() -> dict[str, str]:
    return dict(ROW.findall((REPO_ROOT / "README.md").read_text()))


def test_every_command_has_a_row_in_the_readme():
    assert sorted(readme_rows()) == sorted(subcommands())


def options(parser: argparse.ArgumentParser) -> set[str]:
    """The options of a command and of its own subcommands (`platform env create --from`)."""
    found = set()
    for action in parser._actions:
        found |= set(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= options(sub)
    return found


def test_every_option_a_row_shows_is_one_the_command_accepts():
    commands = subcommands()
    for command, usage in readme_rows().items():
        accepted = options(commands[command])
        shown = set(re.findall(r"--[a-z][a-z-]*", usage))
        assert shown <= accepted, f"platform {command}: {sorted(shown - accepted)} not accepted"
