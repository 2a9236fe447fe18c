"""`platform recover STACK`: bring a stack an interrupted update left behind back to a clean
state.

An update killed mid-flight leaves its lock behind and, when it was changing resources,
pending operations in the state. Recovery removes a lock only when no update holds it (its
process is gone; a lock taken on another host needs --force, since its process cannot be
seen from here), clears the pending operations with a refresh that reads every object back
from the cluster (a pending create is dropped: the next update creates or adopts the object),
and ends with a preview of what the next `platform up` would still change.
"""
from __future__ import annotations

from pathlib import Path

from ops.engine.backends import Lock
from ops.engine.operation import preview, preview_summary
from ops.engine.progress import Progress
from ops.engine.session import Session, describe_pending
from ops.errors import OpsError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("recover", help="clean up after an interrupted update")
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--force", action="store_true",
                        help="remove locks taken on another host (make sure their update is over)")
    parser.set_defaults(run=run)


def holder_alive(lock: Lock) -> bool:
    """Whether the process holding a lock taken on this host still runs the Pulumi CLI."""
    try:
        command = Path(f"/proc/{lock.pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return "pulumi" in Path(command.decode(errors="replace")).name


def clear_locks(session: Session, stack, force: bool) -> list[str]:
    locks = session.locks(stack.name)
    if not locks:
        if session.backend().is_cloud and session.update_in_progress(stack.name):
            if not force:
                raise OpsError(f"stack '{stack.name}' has an update in progress; if it was "
                               f"interrupted, `platform recover {stack.name} --force` cancels it")
            with session.engine.errors(stack.name):
                stack.cancel()
            return ["cancelled the update in progress"]
        return []
    for lock in locks:
        if lock.here and holder_alive(lock):
            raise OpsError(f"stack '{stack.name}' is locked by a running update: {lock.describe()}; "
                           "wait for it to finish (nothing was changed)")
        if not lock.here and not force:
            raise OpsError(f"stack '{stack.name}' is locked by {lock.describe()}, on another host: "
                           "this host cannot see whether that update still runs. Once you know "
                           f"it does not, `platform recover {stack.name} --force` (nothing was changed)")
    with session.engine.errors(stack.name):
        stack.cancel()  # `pulumi cancel`: removes the stack's locks
    return [f"removed the stale lock of {lock.describe()}" for lock in locks]


def run(args) -> int:
    session = Session.from_args(args)
    info = session.stack(args.stack)
    stack = session.engine.select(info.name)
    done = clear_locks(session, stack, args.force)
    pending = session.pending_operations(stack)
    if pending:
        with session.engine.errors(info.name):
            stack.refresh(clear_pending_creates=True, on_event=Progress(session.err, info.name, preview=False),
                          show_secrets=False, color="never", message="recover: clear pending operations")
        left = session.pending_operations(stack)
        if left:
            raise OpsError(f"stack '{info.name}': pending operations remain after a refresh: "
                           f"{describe_pending(left)}")
        done.append(f"cleared {len(pending)} pending operation(s) ({describe_pending(pending)}) "
                    "after reading every object back")
    for line in done or ["nothing to recover: no lock, no pending operation"]:
        session.out.write(f"{info.name}: {line}\n")
    plan = preview(session, info, quiet=True)
    if plan.has_changes or plan.failed:
        session.out.write(f"{info.name}: what the next `platform up {info.name}` would do: "
                          f"{preview_summary(plan)}\n")
    else:
        session.out.write(f"{info.name}: the stack matches its program\n")
    return 1 if plan.failed else 0
