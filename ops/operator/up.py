"""`platform up STACK | --env ENV | --all`: update one stack, with one line per resource step;
or whole environments in dependency order, one line per stack."""
from __future__ import annotations

from pathlib import Path

from ops.engine.fleet import add_target_options
from ops.engine.operation import can_ask, confirm, policy_packs, preview, update
from ops.engine.session import Session
from ops.errors import OpsError
from ops.operator.preview import add_policy_options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("up", help="update one stack, or a whole environment")
    add_target_options(parser)
    parser.add_argument("--yes", action="store_true", help="do not ask (CI); without a terminal it is required")
    parser.add_argument("--refresh", action="store_true", help="read the live objects first")
    parser.add_argument("--message", help="a message recorded with the update")
    parser.add_argument("--json", action="store_true", help="print the stack outputs as JSON")
    parser.add_argument("--plan", metavar="FILE", type=Path,
                        help="one stack: apply only what `platform preview STACK --save-plan "
                             "FILE` planned; any other change stops the update")
    add_policy_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.stack is None:
        if args.plan:
            raise OpsError("--plan applies the plan of one stack: name the stack, not --env/--all")
        from ops.operator.whole_environments import run_fleet_command
        return run_fleet_command(args, "up")
    if not getattr(args, "dry_run", False):
        can_ask(args.yes, "`platform up`")
    session = Session.from_args(args)
    info = session.stack(args.stack)
    if args.plan and not args.plan.is_file():
        raise OpsError(f"stack '{info.name}': --plan {args.plan}: no such file (write it with "
                       f"`platform preview {info.name} --save-plan {args.plan}`)")
    packs = policy_packs(session, args.policy_pack, args.no_policy)
    if args.plan:
        session.err.write(f"{info.name}: applying only what the plan {args.plan} holds\n")
    if not args.yes:
        plan = preview(session, info, refresh=args.refresh, packs=packs)
        if plan.failed:
            raise OpsError(f"preview of '{info.name}' failed:\n" + "\n".join(plan.errors))
        if not plan.has_changes:
            session.err.write(f"{info.name}: no changes\n")
        confirm(session, f"update stack '{info.name}'?", yes=False)
    outputs = update(session, info, refresh=args.refresh, packs=packs, message=args.message,
                     previewed=not args.yes, plan=args.plan and args.plan.resolve())
    if args.json:
        session.print_json(outputs)
    else:
        for key, value in outputs.items():
            session.out.write(f"{key}: {value}\n")
    return 0
