"""What every `platform` command needs: the project, the engine, and the checks an operator
expects before anything runs (the environment is deployed, the stack is not locked, no
interrupted update left pending operations)."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, Optional, TextIO

from pulumi import automation as auto

from ops.engine.automation import Engine
from ops.engine.backends import Backend, Lock, StackState, deployment_of
from ops.engine.updates import Update, every_summary, number
from ops.errors import OpsError
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
        self._deployed: Optional[dict[str, auto.StackSummary]] = None

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

    def backend(self) -> Backend:
        """The backend the CLI is logged in to, told by its URL's scheme."""
        return Backend.of(self.engine.require_backend())

    def state(self, stack: str, what: str) -> StackState:
        """The stack's objects in a self-managed backend, for `what`; refused (naming the
        backend) where platform cannot read them."""
        return StackState(self.backend().store(what), PROJECT_NAME, stack)

    def deployed(self, fresh: bool = False) -> dict[str, auto.StackSummary]:
        """Stacks of this project that the backend holds (listed once a session unless `fresh`:
        each listing is a CLI run)."""
        if fresh or self._deployed is None:
            self._deployed = self.engine.summaries()
        return self._deployed

    def resource_count(self, stack: str) -> Optional[int]:
        """How many resources the backend holds for `stack`, None when it holds no such stack:
        read from a self-managed backend's objects (no CLI run), else from the stack list."""
        if self.backend().readable:
            current = self.state(stack, f"stack '{stack}': counting its resources").current()
            return None if current is None else len(current.get("resources") or [])
        summary = self.deployed(fresh=True).get(stack)
        return None if summary is None else (summary.resource_count or 0)

    def require_environment(self, info: StackInfo) -> None:
        """A component stack needs its environment stack deployed first: refuse up front."""
        if info.is_environment:
            return
        if not self.resource_count(info.env):
            raise OpsError(f"stack '{info.name}': its environment stack '{info.env}' has never been "
                           f"deployed; deploy it first: `platform up {info.env}`")

    def updates(self, stack: auto.Stack) -> list[Update]:
        with self.engine.errors(stack.name):
            return number(every_summary(
                lambda size, page: stack.history(page_size=size, page=page, show_secrets=False)))

    def locks(self, stack: str) -> list[Lock]:
        """The lock objects of the stack in a self-managed backend; none on Pulumi Cloud, which
        reports a running update instead (`update_in_progress`)."""
        if self.backend().is_cloud:
            return []
        return self.state(stack, f"stack '{stack}': reading its locks").locks()

    def update_in_progress(self, stack: str) -> bool:
        """Pulumi Cloud's own word that an update of the stack runs (or was interrupted)."""
        summary = self.deployed().get(stack)
        return bool(summary is not None and summary.update_in_progress)

    def pending_operations(self, stack: auto.Stack) -> list[dict[str, Any]]:
        with self.engine.errors(stack.name):
            deployment = stack.export_stack().deployment or {}
        return list(deployment.get("pending_operations") or [])

    def require_unlocked(self, stack: auto.Stack | str) -> None:
        """Refuse to act on a stack another update holds (or an interrupted one left locked)."""
        name = stack if isinstance(stack, str) else stack.name
        locks = self.locks(name)
        if locks:
            held = "; ".join(lock.describe() for lock in locks)
            raise OpsError(f"stack '{name}' is locked by {held}: wait for that update, or "
                           f"if it was interrupted, `platform recover {name}`")
        if self.backend().is_cloud and self.update_in_progress(name):
            raise OpsError(f"stack '{name}' has an update in progress on "
                           f"{self.backend().describe()}: wait for it, or if it was interrupted, "
                           f"`platform recover {name} --force`")

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
        if self.backend().is_cloud:  # the service exports any update's state
            text = self.engine.run_cli(stack, "stack", "export", "--version", str(update.version))
            return json.loads(text)
        state = self.state(stack, f"stack '{stack}': restoring the state update "
                                  f"{update.version} wrote")
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
