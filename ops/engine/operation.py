"""Preview and update one stack, showing progress and collecting what the engine did.

Every command that changes a stack goes through here, so each runs the same checks first
(the environment is deployed; for a change, the stack is neither locked nor half-updated)
and the policy pack in the same way.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from pulumi import automation as auto

from infra.secrets import SECRET_PLACEHOLDER, is_secret_wrapper
from infra.stack_files import StackFileEditor
from ops.engine import admission
from ops.engine.automation import StackLocked
from ops.engine.progress import Progress
from ops.engine.report import Report, ReportBuilder
from ops.engine.session import Session
from ops.errors import OpsError
from ops.project import StackInfo

POLICY_PACK = "policy"  # the project's CrossGuard pack, run by every preview and update


def policy_packs(session: Session, wanted: Optional[list[str]], disabled: bool) -> list[str]:
    """The policy packs to run: those asked for, else the project's own when it has one."""
    if disabled:
        return []
    if wanted:
        return [str(Path(p).resolve()) for p in wanted]
    pack = session.project.root / POLICY_PACK
    return [str(pack)] if (pack / "PulumiPolicy.yaml").is_file() else []


def _events(*callbacks):
    def on_event(event: auto.EngineEvent) -> None:
        for callback in callbacks:
            callback(event)
    return on_event


class StackNotInBackend(OpsError):
    """A preview of a stack the backend does not hold: refused, never created."""


def preview(session: Session, info: StackInfo, *, refresh: bool = False,
            config_file: Optional[Path] = None, packs: Optional[list[str]] = None,
            quiet: bool = False, expect_no_changes: bool = False, admit: bool = True,
            save_plan: Optional[Path] = None) -> Report:
    """The engine's plan for `info` (the report holds its errors when it failed). Its image is
    admitted first (`admit=False`: a drift check, which reads what already runs). `save_plan`:
    the engine's update plan written there, for an `up` held to it (`update(plan=...)`)."""
    if admit:  # before the engine is asked anything
        admission.admit(session, info, config_file)
    session.require_environment(info)
    if session.resource_count(info.name) is None:
        # A preview only reads: creating the stack would be a write that CI's read-only state
        # identities cannot make, and a stack a pull request merely proposed would be left behind.
        raise StackNotInBackend(f"stack '{info.name}' is not in the backend ({session.engine.backend_url()}): "
                       f"a preview never creates a stack; its first `platform up {info.name}` does")
    builder = ReportBuilder(info.name)
    progress = Progress(session.err, info.name, preview=True)
    args = ["preview", "--color", "never"]
    for pack in packs or []:
        args += ["--policy-pack", pack]
    if refresh:
        args.append("--refresh")
    if config_file:
        args += ["--config-file", str(config_file)]
    if expect_no_changes:
        args.append("--expect-no-changes")
    if save_plan:
        args += ["--save-plan", str(save_plan)]
    try:
        session.engine.run_with_events(info.name, args,
                                       _events(builder) if quiet else _events(builder, progress))
    except StackLocked:
        raise
    except OpsError as error:
        if not builder.report.errors:
            builder.report.errors.append(str(error).split(": ", 1)[-1])
        builder.report.failed = True
    return builder.report


def refusal(report: Report) -> str:
    """Why a preview stopped a change: the mandatory policy violations, else the errors."""
    violations = [f"  - {p.pack}/{p.policy}: {p.message}" for p in report.policies
                  if p.level == "mandatory"]
    return "\n".join(violations or [f"  {e}" for e in report.errors])


class UpdateEvents:
    """The events of one `pulumi up` that previews before it applies: the preview's (the engine
    marks them `planning`) make the plan, which says why a refused update stopped; the update's
    go to `show`, and the stack's own outputs are read from them (secrets arrive masked)."""

    def __init__(self, stack: str, show: Callable[[auto.EngineEvent], None]):
        self.show, self.plan = show, ReportBuilder(stack)
        self.applying = False
        self.outputs: dict[str, Any] = {}

    def __call__(self, event: auto.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is not None and not pre.planning:
            self.applying = True
        if not self.applying:
            self.plan(event)
            if event.policy_event is not None or event.diagnostic_event is not None:
                self.show(event)
            return
        done = event.res_outputs_event
        if done is not None and done.metadata.type == "pulumi:pulumi:Stack" and done.metadata.new:
            self.outputs = dict(sorted((done.metadata.new.outputs or {}).items()))
        self.show(event)


def update(session: Session, info: StackInfo, *, refresh: bool = False,
           packs: Optional[list[str]] = None, message: Optional[str] = None,
           previewed: bool = False, on_event: Optional[Callable[[auto.EngineEvent], None]] = None,
           plan: Optional[Path] = None) -> dict:
    """`up` of one stack with progress lines (or `on_event`); returns its outputs, secrets masked.

    One engine run under the stack's lock: with a policy pack the CLI's `up` previews with it
    and applies only if the preview passed (unless the caller just previewed, `previewed`). A
    pack's stack validations (quota, network policy, zone) judge the complete plan, so an `up`
    that skipped the preview (as the Automation API's does) would report a violation only after
    applying it; a preview of its own before the update would run outside the lock.
    With `plan` (a preview's `save_plan`), the engine applies nothing the plan does not hold:
    a change made since that preview stops the update at the first resource it touches.
    """
    if not previewed:  # else a preview of this very file just admitted it
        admission.admit(session, info)
    session.require_environment(info)
    if session.resource_count(info.name) is None:
        session.engine.select(info.name, create=True)  # `pulumi stack init` from its stack file
    # Pending operations an update itself reports (and refuses when it must); a lock it would
    # only name after starting, so say so first, with what to do.
    session.require_unlocked(info.name)
    args = ["up", "--yes", "--color", "never"]
    if previewed or not packs:
        args.append("--skip-preview")
    for pack in packs or []:
        args += ["--policy-pack", pack]
    if refresh:
        args.append("--refresh")
    if message:
        args += ["--message", message]
    if plan:
        args += ["--plan", str(plan)]
    events = UpdateEvents(info.name, on_event or Progress(session.err, info.name, preview=False))
    try:
        session.engine.run_with_events(info.name, args, events)
    except StackLocked:
        raise
    except OpsError as error:
        if events.applying:
            raise
        raise OpsError(f"stack '{info.name}': the preview stopped the update, nothing was "
                       f"applied:\n{refusal(events.plan.report) or error}") from None
    return {k: (SECRET_PLACEHOLDER if is_secret_wrapper(v) else v) for k, v in events.outputs.items()}


def can_ask(yes: bool, what: str) -> None:
    """Without --yes a change needs a terminal to ask at: refuse before any work is done."""
    if not yes and not sys.stdin.isatty():
        raise OpsError(f"{what} asks before changing anything: pass --yes to proceed without a terminal")


def confirm(session: Session, question: str, yes: bool) -> None:
    """Proceed only with --yes, or with an explicit yes at a terminal."""
    if yes:
        return
    can_ask(yes, question)
    session.err.write(f"{question} [y/N] ")
    session.err.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise OpsError("cancelled: nothing was changed")


def preview_summary(report: Report) -> str:
    """A preview in a few lines: each changed resource with its changed fields."""
    if report.failed:
        return "preview failed:\n  " + "\n  ".join(report.errors)
    lines = [f"{len(report.changed_steps)} resource(s) would change:" if report.has_changes else "no changes"]
    for step in report.changed_steps:
        fields = ", ".join(f"{f.path}: {f.old} -> {f.new}" for f in step.fields)
        lines.append(f"  {step.op} {step.type} {step.name}" + (f" ({fields})" if fields else ""))
    return "\n".join(lines)


def apply_stack_file(session: Session, info: StackInfo, stack_file: StackFileEditor, *, dry_run: bool,
                     yes: bool, question: str, message: str) -> Optional[dict]:
    """Change a stack the way an operator does: its stack file, then an update of it alone.

    Without --yes, or with --dry-run, the config diff and the preview of exactly that file come
    first (the file itself stays untouched until the change is applied). If the update fails,
    the stack file is put back, so that it keeps saying what the stack runs. Returns the
    stack's outputs, or None for a dry run.
    """
    packs = policy_packs(session, None, False)
    if dry_run or not yes:
        session.out.write(stack_file.diff())
        with tempfile.TemporaryDirectory() as folder:
            candidate = Path(folder) / stack_file.path.name
            stack_file.write(candidate)
            plan = preview(session, info, config_file=candidate, packs=packs, quiet=True)
        session.out.write(preview_summary(plan) + "\n")
        if plan.failed:
            raise OpsError(f"preview of '{info.name}' failed; nothing was changed")
        if dry_run:
            return None
        confirm(session, question, yes=False)
    stack_file.write()
    try:
        return update(session, info, packs=packs, message=message, previewed=not yes)
    except BaseException:
        stack_file.path.write_text(stack_file.original)
        session.err.write(f"{stack_file.path.name} is left as it was\n")
        raise
