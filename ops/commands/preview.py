"""`platform preview STACK [--json]`: what an update of one stack would change."""
from __future__ import annotations

from ops.errors import OpsError
from ops.operate import policy_packs, preview
from ops.session import Session


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("preview", help="show what an update of one stack would change")
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--json", action="store_true",
                        help="print the plan as JSON (the input of `platform preview-comment`)")
    parser.add_argument("--refresh", action="store_true", help="read the live objects first")
    add_policy_options(parser)
    parser.set_defaults(run=run)


def add_policy_options(parser) -> None:
    parser.add_argument("--policy-pack", action="append", metavar="DIR",
                        help="run this policy pack (default: the project's policy/ when present)")
    parser.add_argument("--no-policy", action="store_true", help="run no policy pack")


def run(args) -> int:
    session = Session.from_args(args)
    info = session.stack(args.stack)
    report = preview(session, info, refresh=args.refresh, quiet=args.json,
                     packs=policy_packs(session, args.policy_pack, args.no_policy))
    if args.json:
        session.print_json(report.to_dict())
        return 1 if report.failed else 0
    if report.failed:
        raise OpsError(f"preview of '{info.name}' failed:\n" + "\n".join(report.errors))
    return 0
