"""`platform stacks [--env ENV] [--json]`: every stack with its kind and environment, and,
when a backend is logged in, its last update."""
from __future__ import annotations

from typing import Any, Optional

from infra.stacks import environments
from ops.engine.session import Session
from ops.errors import OpsError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("stacks", help="list the stacks and their last update")
    parser.add_argument("--env", metavar="ENV", help="only this environment's stacks")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


NO_BACKEND = ("no backend is logged in, so the last updates are not shown: `pulumi login` "
              "(e.g. `pulumi login file://$HOME/.pulumi-state`) or set PULUMI_BACKEND_URL")
HEADER = {"stack": "STACK", "kind": "KIND", "environment": "ENVIRONMENT", "last_update": "LAST UPDATE"}


def last_updates(session: Session, names: list[str]) -> tuple[Optional[dict[str, dict[str, Any]]], str]:
    """Per stack the backend holds: its last update (version, time, result); None, with the
    reason, when no backend is logged in (or no Pulumi CLI is here): the repository's view alone."""
    try:
        engine = session.engine
    except OpsError as error:
        return None, f"the last updates are not shown: {error}"
    if not engine.backend_url():
        return None, NO_BACKEND
    deployed = session.deployed()
    current = engine.workspace.stack()
    found = {}
    try:
        for name in names:
            if name not in deployed:
                continue
            updates = session.updates(engine.select(name))
            last = updates[-1] if updates else None
            found[name] = {"version": last.version if last else None,
                           "time": (last.end_time or last.start_time).isoformat() if last else None,
                           "result": last.result if last else "never deployed",
                           "kind": last.kind if last else None,
                           "resources": deployed[name].resource_count}
    finally:
        if current is not None:  # listing must not change the operator's selected stack
            engine.workspace.select_stack(current.name)
    return found, ""


def run(args) -> int:
    session = Session.from_args(args)
    known = environments(session.project.root)
    if args.env is not None and args.env not in known:
        raise OpsError(f"unknown environment '{args.env}' (environments: {', '.join(known)})")
    stacks = [s for s in session.project.stacks if args.env in (None, s.env)]
    if not stacks:
        raise OpsError(f"no stacks in {session.project.root}")
    updates, why_not = last_updates(session, [s.name for s in stacks])
    rows = [{"stack": s.name, "kind": s.kind, "environment": s.env,
             "last_update": (updates or {}).get(s.name)} for s in stacks]
    if args.json:
        session.print_json(rows)
        return 0
    lines = [HEADER]
    for row in rows:
        last = row["last_update"]
        lines.append({**row, "last_update": "-" if updates is None else (
            "not in the backend" if last is None else
            f"update {last['version']} {last['kind']} {last['result']} at {last['time']}")})
    widths = {key: max(len(line[key]) for line in lines) for key in ("stack", "kind", "environment")}
    for line in lines:
        session.out.write(f"{line['stack']:<{widths['stack']}}  {line['kind']:<{widths['kind']}}  "
                          f"{line['environment']:<{widths['environment']}}  {line['last_update']}\n")
    if updates is None:
        session.out.write(f"\n{why_not}\n")
    return 0
