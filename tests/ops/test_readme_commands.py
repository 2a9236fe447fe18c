"""The README's table of `platform` commands says what the command accepts: every command the
parser has is in the table, and every option a row shows is one of that command's options."""
from __future__ import annotations

import argparse
import re

from infra.stacks import PROJECT_ROOT as REPO_ROOT
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


def test_every_option_a_row_shows_is_one_the_command_accepts():
    commands = subcommands()
    for command, usage in readme_rows().items():
        accepted = {o for a in commands[command]._actions for o in a.option_strings}
        shown = set(re.findall(r"--[a-z][a-z-]*", usage))
        assert shown <= accepted, f"platform {command}: {sorted(shown - accepted)} not accepted"
