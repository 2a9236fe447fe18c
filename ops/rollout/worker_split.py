"""The step actions of a Worker's rollout: Cloudflare's gradual deployment of its two versions,
set by writing `platform:rollout` into the stack file and updating that one stack (the shared
path of ops.rollout.canary_stack.StackFileSplit).

Which version is which comes from the stack file and the stack's state (its outputs): the
**stable** version is `platform:rollout.stable_version_id` during a rollout, `rollback_to` after
a rollback, else the version the stack serves now (its `version_id` output); the **new**
version is the one the bundle is built into, the stack's `version_id` output once a step has
uploaded it. A rollout starts from a stack serving one version at 100 % whose bundle has changed
since (its `bundle_sha256` output is not the bundle file's digest): the first step uploads the
new version beside the stable one. At 100 % the new version is promoted: `percentage: 100`,
`stable_version_id` gone. Back to 0 % is a rollback: `rollback_to: <stable>`, the new version
uploaded but sent no request.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from infra.stack_files import StackFileEditor
from ops.engine.session import Session
from ops.errors import OpsError
from ops.project import StackInfo
from ops.rollout.canary_stack import StackFileSplit
from ops.stack_config import BUNDLE, ROLLOUT

Outputs = Callable[[], dict[str, Any] | None]


def rollout_of(stack_file: StackFileEditor) -> dict[str, Any]:
    """`platform:rollout` as plain values (absent: the default, 100 % to the new version)."""
    rollout = stack_file.plain().get(ROLLOUT)
    return rollout if isinstance(rollout, dict) else {}


def write_rollout(stack_file: StackFileEditor, values: dict[str, Any]) -> None:
    """`platform:rollout` made exactly `values`, key by key (the file's comments kept)."""
    current = stack_file.config.get(ROLLOUT)
    if not isinstance(current, dict):
        stack_file.set(ROLLOUT, [], values)
        return
    for key in [k for k in current if k not in values]:
        del current[key]
    for key, value in values.items():
        stack_file.set(ROLLOUT, [key], value)


class WorkerSplit(StackFileSplit):
    """`ops.rollout.controller.TrafficSplit` of a Worker stack: the new version's share in its
    gradual deployment (`platform:rollout`), applied by `up` of that stack. `outputs`: the
    stack's outputs as its state holds them now (None: the stack has no state)."""

    def __init__(self, session: Session, info: StackInfo, outputs: Outputs):
        super().__init__(session, info)
        self.outputs = outputs

    def _state(self) -> dict[str, Any]:
        return self.outputs() or {}

    def bundle_digest(self) -> str | None:
        """The sha256 of the bundle the stack file names, as the program hashes it."""
        bundle = self._stack_file().plain().get(BUNDLE)
        path = self.session.project.root / str(bundle)
        return hashlib.sha256(path.read_bytes()).hexdigest() if bundle and path.is_file() else None

    def new_bundle(self) -> bool:
        """The bundle differs from the one the stack's version was built from."""
        state = self._state()
        return bool(state.get("version_id")) and state.get("bundle_sha256") != self.bundle_digest()

    def in_progress(self) -> bool:
        """Two versions split the traffic now: a step below 100 % was taken."""
        return bool(rollout_of(self._stack_file()).get("stable_version_id"))

    def deployed_version(self) -> str | None:
        """The version the stack's last update built from the bundle (its `version_id`)."""
        return self._state().get("version_id")

    def stable_version(self) -> str | None:
        rollout = rollout_of(self._stack_file())
        return (rollout.get("stable_version_id") or rollout.get("rollback_to")
                or self.deployed_version())

    def new_version(self) -> str | None:
        """The version the bundle was uploaded as, once a step uploaded it beside the stable one
        (None before the first step)."""
        version = self.deployed_version()
        return version if version and version != self.stable_version() else None

    def describe(self) -> str:
        new = self.new_version() or "(the new bundle, uploaded by the first step)"
        return (f"{self.info.name}: Worker version {new} beside the stable "
                f"{self.stable_version()}, split by Cloudflare's gradual deployment")

    def weight(self) -> int:
        rollout = rollout_of(self._stack_file())
        if rollout.get("rollback_to"):
            return 0
        if rollout.get("stable_version_id"):
            return int(rollout.get("percentage", 100))
        return 0 if self.new_bundle() else 100

    def set_weight(self, percent: int, reason: str) -> None:
        stable = self.stable_version()
        if stable is None:
            raise OpsError(f"stack '{self.info.name}': no stable version to split the traffic "
                           f"with: the stack has no version_id output (deploy it once first)")
        stack_file = self._stack_file()
        if percent == 0:
            write_rollout(stack_file, {"rollback_to": stable})
            self._apply(stack_file, f"rollback: version {stable} serves all traffic, the new "
                                    f"version none — {reason}")
        elif percent == 100:
            new = self.new_version()
            write_rollout(stack_file, {"percentage": 100})
            self._apply(stack_file, f"promote: version {new} serves all traffic, {stable} none "
                                    f"— {reason}")
        else:
            write_rollout(stack_file, {"percentage": percent, "stable_version_id": stable})
            self._apply(stack_file, f"new version {percent}% — {reason}")
