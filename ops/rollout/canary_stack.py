"""The step actions of a Go service's rollout: its canary release's share of the ingress traffic,
set by writing `platform:canary.release.weight` into the stack file and updating that one stack.

The stack file always says what runs, and each step is an update of the stack, its message the
decision that took it (`platform history STACK` lists them). At 100 % the new version first takes
all the ingress traffic (one update), then is promoted: its image becomes `platform:image.ref`
and the release goes (a second update: the stable Deployment rolls to the new image, the canary
objects are deleted). Back to 0 % is a rollback: the weight 0 first (one annotation, no pod
stopped), then the release goes; the stable version is never touched.
"""
from __future__ import annotations

from typing import Any

from infra.stack_files import StackFileEditor
from ops.engine.operation import apply_stack_file
from ops.engine.session import Session
from ops.errors import OpsError
from ops.project import StackInfo
from ops.stack_config import CANARY, IMAGE

RELEASE = "release"


def release_of(stack_file: StackFileEditor) -> dict[str, Any] | None:
    """The canary release the stack file declares, as plain values."""
    canary = stack_file.plain().get(CANARY)
    release = canary.get(RELEASE) if isinstance(canary, dict) else None
    return release if isinstance(release, dict) else None


def set_release_weight(stack_file: StackFileEditor, percent: int) -> None:
    stack_file.set(CANARY, [RELEASE, "weight"], percent)


def remove_release(stack_file: StackFileEditor) -> None:
    """The release gone; `platform:canary` with it when nothing else is left in it."""
    canary = stack_file.config.get(CANARY)
    if canary is None or RELEASE not in canary:
        return
    del canary[RELEASE]
    if not canary:
        del stack_file.config[CANARY]


def promote_release(stack_file: StackFileEditor) -> str:
    """The release's image becomes the stable one (`platform:image.ref`) and the release goes;
    returns that image."""
    release = release_of(stack_file)
    if release is None:
        raise OpsError(f"{stack_file.path.name}: no platform:canary.release to promote")
    stack_file.set(IMAGE, ["ref"], release["image"])
    remove_release(stack_file)
    return release["image"]


class StackFileSplit:
    """The step actions every kind of stack shares: its stack file edited, each step applied by
    `up` of that stack alone through the operator's engine path, the update's message the
    decision (`platform history STACK` lists them)."""

    def __init__(self, session: Session, info: StackInfo):
        self.session = session
        self.info = info

    def _stack_file(self) -> StackFileEditor:
        return StackFileEditor(self.session.project.stack_file(self.info.name))

    def _apply(self, stack_file: StackFileEditor, message: str) -> None:
        """The edited stack file applied by an update of the stack alone, recorded with
        `message`; an edit that changes nothing runs no update."""
        if not stack_file.changed():
            return
        apply_stack_file(self.session, self.info, stack_file, dry_run=False, yes=True,
                         question="", message=f"platform rollout: {message}")


class CanaryStackSplit(StackFileSplit):
    """`ops.rollout.controller.TrafficSplit` of a Go service stack: its canary release's weight
    in its stack file, applied by `up` of that stack through the operator's engine path."""

    def release(self) -> dict[str, Any] | None:
        """The release the stack file declares now."""
        return release_of(self._stack_file())

    def describe(self) -> str:
        stack_file = self._stack_file()
        release = release_of(stack_file) or {}
        stable = (stack_file.plain().get(IMAGE) or {}).get("ref")
        return (f"{self.info.name}: {release.get('image')} beside the stable {stable}, weighted "
                f"by the ingress controller's canary Ingress")

    def weight(self) -> int:
        release = release_of(self._stack_file())
        return int(release.get("weight") or 0) if release else 0

    def set_weight(self, percent: int, reason: str) -> None:
        stack_file = self._stack_file()
        if release_of(stack_file) is None:
            raise OpsError(f"stack '{self.info.name}': {stack_file.path.name} has no "
                           f"platform:canary.release any more: it changed under the rollout")
        if percent == 0:
            set_release_weight(stack_file, 0)
            self._apply(stack_file, f"rollback: canary 0% — {reason}")
            stack_file = self._stack_file()
            remove_release(stack_file)
            self._apply(stack_file, "rollback: the canary release removed, the stable version "
                                    "unchanged")
        elif percent == 100:
            set_release_weight(stack_file, 100)
            self._apply(stack_file, f"canary 100% — {reason}")
            stack_file = self._stack_file()
            image = promote_release(stack_file)
            self._apply(stack_file, f"promote: {image} is the stable image, the canary release "
                                    f"removed")
        else:
            set_release_weight(stack_file, percent)
            self._apply(stack_file, f"canary {percent}% — {reason}")
