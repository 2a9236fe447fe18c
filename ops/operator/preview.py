"""`platform preview STACK | --env ENV | --all [--json]`: what an update of one stack, or of
whole environments, would change."""
from __future__ import annotations

import sys
from pathlib import Path

from ops.engine.fleet import add_target_options
from ops.engine.operation import StackNotInBackend, policy_packs, preview
from ops.engine.report import Report
from ops.engine.session import Session
from ops.errors import OpsError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("preview", help="show what an update of one stack (or a whole "
                                   "environment) would change")
    add_target_options(parser)
    parser.add_argument("--json", action="store_true",
                        help="print the plan as JSON (the input of `platform preview-comment`)")
    parser.add_argument("--refresh", action="store_true", help="read the live objects first")
    parser.add_argument("--save-plan", metavar="FILE", type=Path,
                        help="one stack: write the engine's update plan to FILE, for `platform "
                             "up STACK --plan FILE` (applies what this preview showed, or nothing)")
    add_policy_options(parser)
    parser.set_defaults(run=run)


def add_policy_options(parser) -> None:
    parser.add_argument("--policy-pack", action="append", metavar="DIR",
                        help="run this policy pack (default: the project's policy/ when present)")
    parser.add_argument("--no-policy", action="store_true", help="run no policy pack")


def run(args) -> int:
    if args.stack is None:
        if args.save_plan:
            raise OpsError("--save-plan writes the plan of one stack: name the stack, not --env/--all")
        from ops.operator.whole_environments import run_fleet_command
        return run_fleet_command(args, "preview")
    session = Session.from_args(args)
    info = session.stack(args.stack)
    try:
        report = preview(session, info, refresh=args.refresh, quiet=args.json,
                         packs=policy_packs(session, args.policy_pack, args.no_policy),
                         save_plan=args.save_plan and args.save_plan.resolve())
    except OpsError as error:
        if not args.json:
            raise
        # The JSON is what a pull request's comment and a deploy's approval are made from. A
        # stack not in the backend is new: nothing to plan against, said as such (its first `up`
        # creates it), so adding a stack blocks no pull request and no promotion. Any other
        # refusal (its environment never deployed, ...) is a failed preview with its reason,
        # never an empty plan read as "no changes".
        if isinstance(error, StackNotInBackend):
            print(f"{info.name}: {error}", file=sys.stderr)
            session.print_json(Report(info.name, warnings=[str(error)], new_stack=True).to_dict())
            return 0
        report = Report(info.name, errors=[str(error)], failed=True)
        print(f"error: {error}", file=sys.stderr)
    if args.json:
        session.print_json(report.to_dict())
        return 1 if report.failed else 0
    if report.failed:
        raise OpsError(f"preview of '{info.name}' failed:\n" + "\n".join(report.errors))
    return 0
