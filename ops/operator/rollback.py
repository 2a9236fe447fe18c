"""`platform rollback STACK --to VERSION [--state-only] [--dry-run]`.

Default: roll forward to the configuration recorded for update VERSION (restore it in the
stack file, then update): what changes the cluster. A Worker rolls back by serving 100% from
the version that update deployed, with no re-upload. `--state-only`: import the state update
VERSION wrote; the cluster changes only at the next `platform up`.
"""
from __future__ import annotations

from pulumi import automation as auto

from infra.stack_files import StackFileEditor
from ops.engine.operation import apply_stack_file, can_ask, confirm
from ops.engine.session import Session
from ops.engine.updates import Update, restored_config, rollback_target
from ops.errors import OpsError
from ops.operator.history import stack_outputs

ROLLOUT = "platform:rollout"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("rollback", help="roll one stack back to an earlier update")
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--to", type=int, required=True, metavar="VERSION",
                        help="the update to return to (`platform history STACK`)")
    parser.add_argument("--state-only", action="store_true",
                        help="restore the state that update wrote, not the workload")
    parser.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    parser.add_argument("--yes", action="store_true", help="do not ask (CI)")
    parser.set_defaults(run=run)


def worker_rollback(session: Session, info, target: Update, updates: list[Update], stack_file: StackFileEditor) -> None:
    """A Worker goes back by routing all traffic to the version update `target` deployed."""
    outputs = stack_outputs(session.saved_state(info.name, target, updates)) or {}
    version_id = outputs.get("version_id")
    if not version_id or version_id == "[unknown]":
        raise OpsError(f"stack '{info.name}': update {target.version} recorded no Worker version id")
    stack_file.config[ROLLOUT] = stack_file.config.get(ROLLOUT) or {}
    rollout = stack_file.config[ROLLOUT]
    for key in [k for k in rollout if k != "rollback_to"]:
        del rollout[key]
    rollout["rollback_to"] = version_id


def roll_forward(session: Session, info, target: Update, updates: list[Update], args) -> int:
    stack_file = StackFileEditor(session.project.stack_file(info.name))
    if info.kind == "cloudflare-worker":
        worker_rollback(session, info, target, updates, stack_file)
    else:
        restored, missing = restored_config(stack_file.plain(), target.config)
        if missing:
            raise OpsError(f"stack '{info.name}': update {target.version} had the secret(s) "  # nosec B608 -- an error message, no SQL
                           f"{', '.join(missing)}, which the stack no longer sets: set them "
                           "(`pulumi config set --secret ...`) and roll back again")
        stack_file.replace_config(restored)
    if not stack_file.changed():
        session.err.write(f"{info.name}: the configuration is already that of update "
                          f"{target.version}; nothing to do\n")
        return 0
    outputs = apply_stack_file(
        session, info, stack_file, dry_run=args.dry_run, yes=args.yes,
        question=f"roll '{info.name}' forward to the configuration of update {target.version}?",
        message=f"rollback to update {target.version}")
    if outputs is None:
        return 0
    session.out.write(f"{info.name}: rolled forward to the configuration of update {target.version}; "
                      f"commit {stack_file.path.name} so that the repository says what runs\n")
    return 0


def restore_state(session: Session, info, stack: auto.Stack, target: Update, updates: list[Update], args) -> int:
    saved = session.saved_state(info.name, target, updates)
    resources = (saved.get("deployment") or {}).get("resources") or []
    if args.dry_run:
        session.out.write(f"{info.name}: would import the state update {target.version} wrote "
                          f"({len(resources)} resources); the cluster would not change\n")
        return 0
    confirm(session, f"replace the state of '{info.name}' with the one update {target.version} wrote?", args.yes)
    with session.engine.errors(info.name):
        stack.import_stack(auto.Deployment(version=saved.get("version", 3), deployment=saved["deployment"]))
    session.out.write(
        f"{info.name}: state restored to the one update {target.version} wrote. The cluster has not "
        f"changed: it changes only at the next `platform up {info.name}` (run `pulumi refresh -s "
        f"{info.name}` first to read the live objects back into the state)\n")
    return 0


def run(args) -> int:
    if not getattr(args, "dry_run", False):
        can_ask(args.yes, "`platform rollback`")
    session = Session.from_args(args)
    info = session.stack(args.stack)
    stack = session.engine.select(info.name)  # a stack never deployed is refused here
    updates = session.updates(stack)
    target = rollback_target(updates, args.to, info.name)
    session.require_clean(stack)
    if args.state_only:
        return restore_state(session, info, stack, target, updates, args)
    return roll_forward(session, info, target, updates, args)
