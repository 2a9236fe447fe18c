"""`platform destroy STACK | --env ENV`: delete one stack's resources, or a whole environment's
(its components first, then the environment stack).

An environment stack's namespace holds every component stack's objects, so it is refused
while any component stack of that environment still has resources (they are listed); once
they are gone, the environment's deletion protection is lifted and it is destroyed.
"""
from __future__ import annotations

from typing import Callable, Optional

from ops.engine.automation import OnEvent
from ops.engine.fleet import add_target_options
from ops.engine.operation import can_ask, confirm
from ops.engine.progress import Progress
from ops.engine.session import Session
from ops.errors import OpsError
from ops.project import StackInfo


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("destroy", help="delete one stack's resources")
    add_target_options(parser, every=False)
    parser.add_argument("--yes", action="store_true", help="do not ask (CI)")
    parser.add_argument("--json", action="store_true", help="with --env: the run's summary as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.stack is None:
        from ops.operator.whole_environments import run_fleet_command
        return run_fleet_command(args, "destroy")
    if not getattr(args, "dry_run", False):
        can_ask(args.yes, "`platform destroy`")
    session = Session.from_args(args)
    info = session.stack(args.stack)
    destroy_stack(session, info, confirmed=lambda: confirm(
        session, f"destroy every resource of stack '{info.name}'?", args.yes))
    session.out.write(f"{info.name}: destroyed\n")
    return 0


def destroy_stack(session: Session, info: StackInfo, confirmed: Callable[[], None] = lambda: None,
                  on_event: Optional[OnEvent] = None) -> None:
    """Destroy one stack's resources, after its checks (and `confirmed`, which may refuse)."""
    stack = session.engine.select(info.name)
    if info.is_environment:
        deployed = session.deployed(fresh=True)
        live = [f"{c.name} ({deployed[c.name].resource_count} resources)"
                for c in session.project.components_of(info.env)
                if c.name in deployed and deployed[c.name].resource_count]
        if live:
            raise OpsError(f"stack '{info.name}' is the environment of component stacks that still "
                           f"have resources: {', '.join(live)}. Destroy them first "
                           f"(`platform destroy <stack>`); nothing was changed")
    session.require_clean(stack)
    confirmed()
    if info.is_environment:
        # The deliberate step the environment's protection asks for, now that nothing lives in it.
        session.engine.run_cli(info.name, "state", "unprotect", "--all", "--yes")
    with session.engine.errors(info.name):
        stack.destroy(on_event=on_event or Progress(session.err, info.name, preview=False),
                      show_secrets=False, color="never")
