"""`platform scale STACK --min N --max M [--dry-run]`: change one Go service's autoscaling
bounds, validated before anything runs, written into its stack file, applied to that stack only."""
from __future__ import annotations

from infra.stack_files import StackFileEditor
from ops.engine.operation import apply_stack_file, can_ask
from ops.engine.session import Session
from ops.errors import OpsError

SCALING = "platform:scaling"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("scale", help="set one Go service's min/max replicas")
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--min", type=int, dest="min_replicas", metavar="N", help="HPA minimum")
    parser.add_argument("--max", type=int, dest="max_replicas", metavar="M", help="HPA maximum")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the config change and the preview; change nothing")
    parser.add_argument("--yes", action="store_true", help="do not ask (CI)")
    parser.set_defaults(run=run)


def run(args) -> int:
    session = Session.from_args(args)
    info = session.stack(args.stack)
    if info.kind != "go-service":
        raise OpsError(f"stack '{info.name}' is a {info.kind} stack: `platform scale` sets the "
                       "replicas of a Go service (a Worker scales by itself)")
    if args.min_replicas is None and args.max_replicas is None:
        raise OpsError("say what to change: --min N and/or --max M")

    stack_file = StackFileEditor(session.project.stack_file(info.name))
    scaling = dict(stack_file.plain().get(SCALING) or {})
    if args.min_replicas is not None:
        scaling["min_replicas"] = args.min_replicas
    if args.max_replicas is not None:
        scaling["max_replicas"] = args.max_replicas
    # Imported here: the config models cost every other command their import time.
    from ops.operator.config_change import check_quota, validated
    candidate = validated(session.project, info, {SCALING: scaling})  # the program's own rules
    check_quota(session.project, info, candidate)
    if not args.dry_run:
        can_ask(args.yes, "`platform scale`")
    for key in ("min_replicas", "max_replicas"):
        if key in scaling:
            stack_file.set(SCALING, [key], scaling[key])
    if not stack_file.changed():
        session.err.write(f"{info.name}: already at min {candidate.scaling.min_replicas}, "
                          f"max {candidate.scaling.max_replicas}; nothing to do\n")
        return 0

    outputs = apply_stack_file(
        session, info, stack_file, dry_run=args.dry_run, yes=args.yes,
        question=f"scale stack '{info.name}'?",
        message=f"scale to min {candidate.scaling.min_replicas}, max {candidate.scaling.max_replicas}")
    if outputs is None:
        return 0
    session.out.write(f"{info.name}: min_replicas {outputs.get('min_replicas')}, "
                      f"max_replicas {outputs.get('max_replicas')}\n")
    return 0
