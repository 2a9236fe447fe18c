"""`platform preview|up|drift|destroy --env ENV | --all`: whole environments, in the order the
stack model gives (an environment stack before its components, which are independent of each
other; destroy in the reverse order; with `--all`, environments in promotion order).

Exit codes: 0 every stack succeeded (drift: and none drifted); 1 a stack failed, or the run
was refused before anything ran; 2 (drift only) a stack drifted and none failed; 130
interrupted (`--resume` runs what did not finish).
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable

from pulumi import automation as auto

from infra.stacks import environments as declared_environments
from infra.stacks import promotion_order
from ops.engine.fleet import (
    INTERRUPTED,
    SUCCEEDED,
    Display,
    FleetStack,
    Outcome,
    Record,
    Summary,
    check_run_options,
    environment_order,
    run_fleet,
)
from ops.engine.operation import can_ask, confirm, policy_packs, preview, update
from ops.engine.session import Session
from ops.errors import OpsError

QUIET_OPS = {"same", "read", "refresh", "discard"}
DRIFT = 2


class Counts:
    """Live resource counts of one stack's run, from its engine events (what changed so far)."""

    def __init__(self, report: Callable[[dict[str, int]], None]):
        self.report, self.counts = report, Counter()

    def __call__(self, event: auto.EngineEvent) -> None:
        done = event.res_outputs_event
        if done is not None and not done.planning and done.metadata.type != "pulumi:pulumi:Stack":
            op = getattr(done.metadata.op, "value", done.metadata.op)
            if op not in QUIET_OPS:
                self.counts[op] += 1
                self.report(dict(self.counts))
        elif event.summary_event is not None and self.counts:
            self.report(dict(self.counts))


def _changes(counts: dict[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in counts.items() if k not in QUIET_OPS and v}


def targets(session: Session, args) -> list[str]:
    """The environments a whole-environment command acts on, checked against the stack files."""
    known = declared_environments(session.project.root)
    if getattr(args, "all", False):
        return list(promotion_order(session.project.root))
    if args.env not in known:
        raise OpsError(f"unknown environment '{args.env}' (environments: {', '.join(known)}): an "
                       f"environment is its stack file, Pulumi.{args.env}.yaml")
    return [args.env]


def plan(session: Session, command: str, envs: list[str], only: str | None = None) -> list[FleetStack]:
    components = {env: [c.name for c in session.project.components_of(env)] for env in envs}
    if only:
        wanted = {c.strip() for c in only.split(",") if c.strip()}
        known = {c.component for env in envs for c in session.project.components_of(env)}
        if wanted - known:
            raise OpsError(f"--components: {', '.join(sorted(wanted - known))} has no stack in "
                           f"{', '.join(envs)} (components: {', '.join(sorted(known)) or '(none)'})")
        components = {env: [c for c in names if c.rsplit(".", 1)[0] in wanted]
                      for env, names in components.items()}
    # Only `up` carries a change from one environment into the next: it waits for the earlier.
    stacks = environment_order(envs, components, reverse=command == "destroy", chained=command == "up")
    if command == "drift":  # a check reads each stack on its own: none waits for another
        for stack in stacks:
            stack.needs = ()
    return stacks


def _action(session: Session, command: str, args) -> Callable:
    packs = policy_packs(session, getattr(args, "policy_pack", None), getattr(args, "no_policy", False))

    def run_preview(stack: FleetStack, counted) -> Outcome:
        report = preview(session, session.stack(stack.name), packs=packs, quiet=True)
        changes = _changes(report.counts)
        if report.failed:
            detail = "\n".join(report.errors)
            return Outcome(False, detail.splitlines()[0] if detail else "preview failed", detail,
                           changes, {"report": report.to_dict()})
        return Outcome(True, "" if report.has_changes else "no changes", counts=changes,
                       data={"report": report.to_dict()})

    def run_up(stack: FleetStack, counted) -> Outcome:
        outputs = update(session, session.stack(stack.name), packs=packs, message=args.message,
                         refresh=args.refresh, on_event=Counts(counted))
        return Outcome(True, "" if stack.counts else "no changes", data={"outputs": outputs})

    def run_drift(stack: FleetStack, counted) -> Outcome:
        from ops.operator.drift import check, describe
        if session.resource_count(stack.name) is None:
            return Outcome(True, "not deployed: nothing to drift from", data={"status": "not deployed"})
        status, _, report = check(session, stack.name)
        lines = describe(report) if status == "drift" else ["  " + e for e in report.errors]
        return Outcome(status != "error", status, "\n".join(lines), _changes(report.counts),
                       {"status": status, "report": report.to_dict()})

    def run_destroy(stack: FleetStack, counted) -> Outcome:
        from ops.operator.destroy import destroy_stack
        # Read from the backend's objects: a stack listing by the CLI while other stacks are
        # written side by side fails on their files being replaced.
        if session.resource_count(stack.name) is None:
            return Outcome(True, "not in the backend: nothing to destroy")
        destroy_stack(session, session.stack(stack.name), on_event=Counts(counted))
        return Outcome(True, "destroyed")

    return {"preview": run_preview, "up": run_up, "drift": run_drift, "destroy": run_destroy}[command]


def record_for(session: Session, command: str, envs: list[str], every: bool) -> Record:
    target = "every environment" if every else f"environment {envs[0]}"
    slug = re.sub(r"[^a-z0-9.-]+", "-", "all" if every else envs[0])
    return Record(session.project.root / "build" / "fleet" / f"{command}-{slug}.json", command, target)


def run_fleet_command(args, command: str) -> int:
    """The whole-environment form of `command`; returns the exit code (see the module doc)."""
    if command in ("up", "destroy"):
        can_ask(args.yes, f"`platform {command} --env`")
    session = Session.from_args(args)
    envs = targets(session, args)
    every = bool(getattr(args, "all", False))
    stacks = plan(session, command, envs, getattr(args, "components", None))
    if not stacks:
        raise OpsError(f"no stacks in {', '.join(envs)}")
    record = record_for(session, command, envs, every)
    # Bad input is refused before the CLI or the backend is looked for.
    check_run_options(args.parallel, record, args.resume)
    session.engine.require_backend()
    if command == "drift" and not any(s.name in session.deployed() for s in stacks):
        raise OpsError(f"no stack of {', '.join(envs)} is deployed in {session.engine.backend_url()}")
    if command in ("up", "destroy") and not args.yes:
        what = "update" if command == "up" else "destroy every resource of"
        confirm(session, f"{what} {len(stacks)} stack(s) of {', '.join(envs)} "
                         f"({', '.join(s.name for s in stacks)})?", yes=False)
    display = Display(session.err, stacks)
    summary = run_fleet(stacks, _action(session, command, args), parallel=args.parallel,
                        display=display, record=record,
                        resume=args.resume, err=session.err)
    return report(session, command, summary, json_output=getattr(args, "json", False))


def report(session: Session, command: str, summary: Summary, json_output: bool) -> int:
    drifted = [s.name for s in summary.stacks if s.data.get("status") == "drift"]
    if json_output and command == "drift":
        # One entry per stack checked, as for one stack: what `platform drift-issues` reads.
        session.print_json({s.name: {"status": s.data.get("status", "error"),
                                     "report": s.data.get("report") or {"stack": s.name, "errors": [s.detail or s.note],
                                                                        "failed": True}}
                            for s in summary.stacks if s.data.get("status") != "not deployed"})
    elif json_output:
        session.print_json({"command": command, **summary.to_dict()})
    elif command == "drift":
        # As for one stack: each stack checked and its status, then what drifted or failed.
        for stack in summary.stacks:
            status = stack.data.get("status") or "error"
            if status != "not deployed":
                session.out.write(f"{stack.name}: {status}\n" + (stack.detail + "\n" if stack.detail else ""))
        session.out.write(summary.text().splitlines()[0] + "\n")
    else:
        session.out.write(summary.text() + "\n")
        if summary.interrupted:
            session.out.write("resume with the same command and --resume\n")
        elif summary.failed:
            session.out.write("after a fix, the same command with --resume runs only what did not "
                              "succeed\n")
    if summary.interrupted:
        return INTERRUPTED
    if any(s.state != SUCCEEDED for s in summary.stacks):
        return 1
    return DRIFT if drifted else 0

