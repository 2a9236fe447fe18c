"""What every `platform` command needs: the project, the engine, and the checks an operator
expects before anything runs (the environment is deployed, the stack is not locked, no
interrupted update left pending operations)."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, Optional, TextIO

from pulumi import automation as auto

from ops.backend import Lock, StackState, deployment_of, open_store
from ops.engine import Engine
from ops.errors import OpsError
from ops.history import Update, number
from ops.project import Project, StackInfo

PROJECT_NAME = "platform"


@dataclass
class Session:
    project: Project
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def __post_init__(self) -> None:
        self._engine: Optional[Engine] = None
        self._store_url: Optional[str] = None

    @classmethod
    def from_args(cls, args: Any) -> "Session":
        return cls(Project.at(getattr(args, "project_dir", None)))

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.project, progress=self.err)
        return self._engine

    def stack(self, name: str) -> StackInfo:
        return self.project.stack(name)

    # -- the backend's view of a stack --------------------------------------------------------

    def state(self, stack: str) -> Optional[StackState]:
        """The stack's objects in a self-managed backend; None for a managed one."""
        url = self.engine.require_backend()
        store = open_store(url)
        return StackState(store, PROJECT_NAME, stack) if store else None

    def deployed(self) -> dict[str, auto.StackSummary]:
        """Stacks of this project that the backend holds."""
        return self.engine.summaries()

    def require_environment(self, info: StackInfo) -> None:
        """A component stack needs its environment stack deployed first: refuse up front."""
        if info.is_environment:
            return
        summary = self.deployed().get(info.env)
        if summary is None or not summary.resource_count:
            raise OpsError(f"stack '{info.name}': its environment stack '{info.env}' has never been "
                           f"deployed; deploy it first: `platform up {info.env}`")

    def updates(self, stack: auto.Stack) -> list[Update]:
        with self.engine.errors(stack.name):
            return number(stack.history(show_secrets=False))

    def locks(self, stack: str) -> list[Lock]:
        state = self.state(stack)
        return state.locks() if state else []

    def pending_operations(self, stack: auto.Stack) -> list[dict[str, Any]]:
        with self.engine.errors(stack.name):
            deployment = stack.export_stack().deployment or {}
        return list(deployment.get("pending_operations") or [])

    def require_unlocked(self, stack: auto.Stack) -> None:
        """Refuse to act on a stack another update holds (or an interrupted one left locked)."""
        locks = self.locks(stack.name)
        if locks:
            held = "; ".join(lock.describe() for lock in locks)
            raise OpsError(f"stack '{stack.name}' is locked by {held}: wait for that update, or "
                           f"if it was interrupted, `platform recover {stack.name}`")

    def require_clean(self, stack: auto.Stack) -> None:
        """Refuse to act on a locked stack or one an interrupted update left half done."""
        self.require_unlocked(stack)
        pending = self.pending_operations(stack)
        if pending:
            raise OpsError(f"stack '{stack.name}' has {len(pending)} pending operation(s) from an "
                           f"interrupted update ({describe_pending(pending)}): "
                           f"`platform recover {stack.name}` first")

    def saved_state(self, stack: str, update: Update, updates: list[Update]) -> dict[str, Any]:
        """The state update `update` wrote, as `stack import` takes it."""
        state = self.state(stack)
        if state is None:
            text = self.engine.run_cli(stack, "stack", "export", "--version", str(update.version))
            return json.loads(text)
        saved = state.saved_updates()
        if len(saved) != len(updates):
            raise OpsError(f"stack '{stack}': the backend's history changed while reading it "
                           "(another update ran?): try again")
        return deployment_of(state.checkpoint(saved[update.version - 1]))

    def print_json(self, value: Any) -> None:
        self.out.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def describe_pending(pending: list[dict[str, Any]]) -> str:
    items = [f"{p.get('type', '?')} {(p.get('resource') or {}).get('urn', '?').rsplit('::', 1)[-1]}"
             for p in pending]
    return ", ".join(items)
