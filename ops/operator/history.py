"""`platform history STACK [--json]`: the stack's updates, numbered, with the settings that
matter (image and replicas of a Go service; version and traffic split of a Worker)."""
from __future__ import annotations

from typing import Any, Optional

from ops.engine.session import Session
from ops.engine.updates import Update, settings_of
from ops.errors import OpsError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("history", help="list one stack's updates")
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def stack_outputs(deployment: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The stack outputs a state holds (its root `pulumi:pulumi:Stack` resource's)."""
    for resource in (deployment.get("deployment") or {}).get("resources") or []:
        if resource.get("type") == "pulumi:pulumi:Stack":
            return resource.get("outputs") or {}
    return None


def with_outputs(session: Session, stack: str, updates: list[Update]) -> None:
    """Attach each update's stack outputs (a Worker's version id lives only there)."""
    for update in updates:
        if update.kind == "update" and update.succeeded:
            try:
                update.outputs = stack_outputs(session.saved_state(stack, update, updates))
            except OpsError:
                update.outputs = None


def run(args) -> int:
    session = Session.from_args(args)
    info = session.stack(args.stack)
    stack = session.engine.select(info.name)
    updates = session.updates(stack)
    if not updates:
        raise OpsError(f"stack '{info.name}' has never been deployed: it has no updates")
    if info.kind == "cloudflare-worker":
        with_outputs(session, info.name, updates)
    if args.json:
        session.print_json([u.to_dict(info.kind) for u in updates])
        return 0
    for update in reversed(updates):
        started = update.start_time.strftime("%Y-%m-%d %H:%M:%S") if update.start_time else "?"
        took = (f"{(update.end_time - update.start_time).total_seconds():.0f}s"
                if update.end_time and update.start_time else "")
        settings = ", ".join(f"{k}={v}" for k, v in settings_of(info.kind, update).items()
                             if v not in (None, {}))
        changes = " ".join(f"{k}={v}" for k, v in sorted(update.resource_changes.items()) if v)
        session.out.write(f"{update.version:>4}  {update.kind:<8} {update.result:<11} {started} "
                          f"{took:>5}  {changes}\n"
                          + (f"      {settings}\n" if settings else "")
                          + (f"      {update.message}\n" if update.message else ""))
    return 0
