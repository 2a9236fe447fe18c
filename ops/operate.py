"""Preview and update one stack, showing progress and collecting what the engine did.

Every command that changes a stack goes through here, so each runs the same checks first
(the environment is deployed; for a change, the stack is neither locked nor half-updated)
and the policy pack in the same way.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Optional

from pulumi import automation as auto

from ops.engine import engine_reason, outputs_plain
from ops.errors import OpsError
from ops.progress import Progress
from ops.project import StackInfo
from ops.report import Report, ReportBuilder
from ops.session import Session
from ops.stack_file import StackFile

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


def preview(session: Session, info: StackInfo, *, refresh: bool = False,
            config_file: Optional[Path] = None, packs: Optional[list[str]] = None,
            quiet: bool = False, expect_no_changes: bool = False) -> Report:
    """The engine's plan for `info` (the report holds its errors when it failed)."""
    session.require_environment(info)
    stack = session.engine.select(info.name, create=True)
    return _preview(session, stack, refresh=refresh, config_file=config_file, packs=packs,
                    quiet=quiet, expect_no_changes=expect_no_changes)


def _preview(session: Session, stack: auto.Stack, *, refresh: bool = False,
             config_file: Optional[Path] = None, packs: Optional[list[str]] = None,
             quiet: bool = False, expect_no_changes: bool = False) -> Report:
    builder = ReportBuilder(stack.name)
    progress = Progress(session.err, stack.name, preview=True)
    try:
        stack.preview(on_event=_events(builder) if quiet else _events(builder, progress),
                      refresh=refresh or None, policy_packs=packs or None,
                      config_file=str(config_file) if config_file else None,
                      expect_no_changes=expect_no_changes or None, color="never")
    except auto.CommandError as error:
        if not builder.report.errors:
            builder.report.errors.append(engine_reason(error))
        builder.report.failed = True
    return builder.report


def refusal(report: Report) -> str:
    """Why a preview stopped a change: the mandatory policy violations, else the errors."""
    violations = [f"  - {p.pack}/{p.policy}: {p.message}" for p in report.policies
                  if p.level == "mandatory"]
    return "\n".join(violations or [f"  {e}" for e in report.errors])


def update(session: Session, info: StackInfo, *, refresh: bool = False,
           packs: Optional[list[str]] = None, message: Optional[str] = None,
           previewed: bool = False) -> dict:
    """`up` of one stack with progress lines; returns its outputs, secrets masked.

    With a policy pack, the change is previewed with it first (unless the caller just did,
    `previewed`): the Automation API's `up` skips the preview, and a pack's stack validations
    (quota, network policy, zone) judge the complete plan, so without one they would report a
    violation only after it was applied.
    """
    session.require_environment(info)
    stack = session.engine.select(info.name, create=True)
    # Pending operations an update itself reports (and refuses when it must); a lock it would
    # only name after starting, so say so first, with what to do.
    session.require_unlocked(stack)
    if packs and not previewed:
        plan = _preview(session, stack, refresh=refresh, packs=packs, quiet=True)
        if plan.failed:
            raise OpsError(f"stack '{info.name}': the preview stopped the update, nothing was "
                           f"applied:\n{refusal(plan)}")
    progress = Progress(session.err, info.name, preview=False)
    with session.engine.errors(info.name):
        result = stack.up(on_event=progress, refresh=refresh or None, policy_packs=packs or None,
                          message=message, show_secrets=False, color="never")
    return outputs_plain(result.outputs)


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


def apply_stack_file(session: Session, info: StackInfo, stack_file: StackFile, *, dry_run: bool,
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
