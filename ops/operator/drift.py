"""`platform drift STACK | --env ENV | --all`: does the live infrastructure still match the stack?

A preview that reads the live objects first (`preview --refresh --expect-no-changes`): exit 0
when nothing drifted, 2 when something did, naming each drifted resource and field; 1 when
the check itself could not run. `platform up --refresh STACK` repairs the drift.
"""
from __future__ import annotations

from ops.engine.fleet import add_target_options
from ops.engine.operation import preview
from ops.engine.report import Report
from ops.engine.session import Session
from ops.errors import OpsError

DRIFT = 2


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("drift", help="detect changes made behind the stack's back")
    add_target_options(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def describe(report: Report) -> list[str]:
    lines = []
    for step in report.changed_steps:
        what = {"create": "is gone (would be recreated)", "delete": "is no longer in the program",
                "replace": "would be replaced", "update": "differs"}.get(step.op, step.op)
        lines.append(f"  {step.type} {step.name} {what}")
        for field in step.fields:
            lines.append(f"    {field.path}: live {field.old!r}, stack {field.new!r}")
    return lines


def check(session: Session, name: str) -> tuple[str, int, Report]:
    """(status, exit code, report) of one deployed stack: clean 0, drift 2, error 1."""
    report = preview(session, session.stack(name), refresh=True, quiet=True, admit=False)
    if report.failed:
        return "error", 1, report
    if report.has_changes:
        return "drift", DRIFT, report
    return "clean", 0, report


def run(args) -> int:
    if args.stack is None:
        from ops.operator.whole_environments import run_fleet_command
        return run_fleet_command(args, "drift")
    session = Session.from_args(args)
    info = session.stack(args.stack)
    if session.resource_count(info.name) is None:  # never deployed: nothing to drift from
        raise OpsError(f"stack '{info.name}' has never been deployed: it is not in the backend "
                       f"({session.engine.backend_url()})")
    status, code, report = check(session, info.name)
    if args.json:
        session.print_json({info.name: {"status": status, "report": report.to_dict()}})
        return code
    session.out.write(f"{info.name}: {status}\n")
    if status == "drift":
        session.out.write("\n".join(describe(report)) + "\n")
    elif status == "error":
        session.out.write("  " + "\n  ".join(report.errors) + "\n")
    return code
