"""The `platform` command line: one subcommand per command module of the three audiences,
operators (`ops.operator`), CI planning (`ops.planning`) and CI reporting (`ops.reporting`).

Each command module has `add_parser(subparsers)`, which registers its subcommand and sets
`run(args) -> int` as its handler. Errors an operator can act on (OpsError, the program's
PlatformError) print one message and exit non-zero; nothing prints a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional

from infra.errors import PlatformError
from ops.errors import OpsError

# The command modules, in the order `platform --help` lists them.
COMMANDS: list[str] = [
    "operator.stacks", "operator.preview", "operator.up", "operator.history", "operator.scale",
    "operator.rollback", "operator.promote", "operator.rollout", "operator.drift", "operator.destroy", "operator.recover",
    "planning.affected", "reporting.preview_comment", "reporting.drift_issues", "reporting.pull_request",
    "operator.adopt",
    "operator.env",
]


class Parser(argparse.ArgumentParser):
    """Usage errors exit 1, not argparse's 2: `platform drift` keeps 2 for "drift found"."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="platform", description="Operate one stack at a time: preview, deploy, "
                    "scale, roll back, detect drift, recover; and CI's affected stacks and "
                    "preview comments.")
    parser.add_argument("--project-dir", metavar="DIR",
                        help="the project folder (default: the one holding Pulumi.yaml at or "
                             "above the working directory)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser,
                                       required=True)
    for name in COMMANDS:
        importlib.import_module(f"ops.{name}").add_parser(subparsers)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except OpsError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except PlatformError as error:  # the program's own refusal: unknown stack, bad config
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
