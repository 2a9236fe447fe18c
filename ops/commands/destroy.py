"""`platform destroy STACK`: delete one stack's resources.

An environment stack's namespace holds every component stack's objects, so it is refused
while any component stack of that environment still has resources (they are listed); once
they are gone, the environment's deletion protection is lifted and it is destroyed.
"""
from __future__ import annotations

from ops.errors import OpsError
from ops.operate import can_ask, confirm
from ops.progress import Progress
from ops.session import Session


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("destroy", help="delete one stack's resources")
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--yes", action="store_true", help="do not ask (CI)")
    parser.set_defaults(run=run)


def run(args) -> int:
    if not getattr(args, "dry_run", False):
        can_ask(args.yes, "`platform destroy`")
    session = Session.from_args(args)
    info = session.stack(args.stack)
    stack = session.engine.select(info.name)
    if info.is_environment:
        deployed = session.deployed()
        live = [f"{c.name} ({deployed[c.name].resource_count} resources)"
                for c in session.project.components_of(info.env)
                if c.name in deployed and deployed[c.name].resource_count]
        if live:
            raise OpsError(f"stack '{info.name}' is the environment of component stacks that still "
                           f"have resources: {', '.join(live)}. Destroy them first "
                           f"(`platform destroy <stack>`); nothing was changed")
    session.require_clean(stack)
    confirm(session, f"destroy every resource of stack '{info.name}'?", args.yes)
    if info.is_environment:
        # The deliberate step the environment's protection asks for, now that nothing lives in it.
        session.engine.run_cli(info.name, "state", "unprotect", "--all", "--yes")
    with session.engine.errors(info.name):
        stack.destroy(on_event=Progress(session.err, info.name, preview=False),
                      show_secrets=False, color="never")
    session.out.write(f"{info.name}: destroyed\n")
    return 0
