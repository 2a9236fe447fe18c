"""`platform stacks [--env ENV] [--json]`: every stack with its kind and environment, and,
when a backend is logged in, its last update."""
from __future__ import annotations

from typing import Any, Optional

from infra.stacks import ENVIRONMENTS
from ops.errors import OpsError
from ops.session import Session


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("stacks", help="list the stacks and their last update")
    parser.add_argument("--env", choices=ENVIRONMENTS, help="only this environment's stacks")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def last_updates(session: Session, names: list[str]) -> Optional[dict[str, dict[str, Any]]]:
    """Per stack the backend holds: its last update (version, time, result); None when no
    backend is logged in (or no Pulumi CLI is here): the repository's view alone."""
    try:
        engine = session.engine
    except OpsError:
        return None
    if not engine.backend_url():
        return None
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
    return found


def run(args) -> int:
    session = Session.from_args(args)
    stacks = [s for s in session.project.stacks if args.env in (None, s.env)]
    if not stacks:
        raise OpsError(f"no stacks in {session.project.root}")
    updates = last_updates(session, [s.name for s in stacks])
    rows = [{"stack": s.name, "kind": s.kind, "environment": s.env,
             "last_update": (updates or {}).get(s.name)} for s in stacks]
    if args.json:
        session.print_json(rows)
        return 0
    width = max(len(s.name) for s in stacks)
    for row in rows:
        last = row["last_update"]
        text = "" if updates is None else (
            "not in the backend" if last is None else
            f"update {last['version']} {last['kind']} {last['result']} at {last['time']}")
        session.out.write(f"{row['stack']:<{width}}  {row['kind']:<17}  {row['environment']:<10}  {text}\n")
    return 0
