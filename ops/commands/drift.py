"""`platform drift STACK | --all`: does the live infrastructure still match the stack?

A preview that reads the live objects first (`preview --refresh --expect-no-changes`): exit 0
when nothing drifted, 2 when something did, naming each drifted resource and field; 1 when
the check itself could not run. `platform up --refresh STACK` repairs the drift.
"""
from __future__ import annotations

from ops.errors import OpsError
from ops.operate import preview
from ops.report import Report
from ops.session import Session

DRIFT = 2


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("drift", help="detect changes made behind the stack's back")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("stack", nargs="?", metavar="STACK")
    target.add_argument("--all", action="store_true", help="every stack the backend holds")
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


def run(args) -> int:
    session = Session.from_args(args)
    if args.all:
        deployed = session.deployed()
        names = [s.name for s in session.project.stacks if s.name in deployed]
        if not names:
            raise OpsError(f"no stack of this project is deployed in {session.engine.backend_url()}")
    else:
        info = session.stack(args.stack)
        session.engine.select(info.name)  # a stack never deployed has nothing to drift from
        names = [info.name]
    results, codes = {}, set()
    for name in names:
        report = preview(session, session.stack(name), refresh=True, quiet=True)
        if report.failed:
            status, code = "error", 1
        elif report.has_changes:
            status, code = "drift", DRIFT
        else:
            status, code = "clean", 0
        codes.add(code)
        results[name] = {"status": status, "report": report.to_dict()}
        if not args.json:
            session.out.write(f"{name}: {status}\n")
            if status == "drift":
                session.out.write("\n".join(describe(report)) + "\n")
            elif status == "error":
                session.out.write("  " + "\n  ".join(report.errors) + "\n")
    if args.json:
        session.print_json(results)
    # A check that could not run outranks drift: its stacks' state is unknown.
    return 1 if 1 in codes else (DRIFT if DRIFT in codes else 0)
