"""A stack's updates as an operator reads them: numbered, with the settings that matter, and
the configuration each one ran with (which is what a rollback restores).

The records come from the CLI's history (`pulumi stack history --json`, without secrets).
A self-managed backend numbers every record 0; its updates are numbered here 1, 2, ... in
the order they happened, as Pulumi Cloud numbers them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Optional

from infra.project import CONFIG_NAMESPACE
from infra.secrets import SECRET_PLACEHOLDER, holds_secure_value
from ops.errors import OpsError

NAMESPACE = CONFIG_NAMESPACE + ":"


class Secret:
    """A secret config value as the history shows it: present, never readable."""

    def __repr__(self) -> str:
        return SECRET_PLACEHOLDER

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret)

    def __hash__(self) -> int:
        return 0


SECRET = Secret()


@dataclass
class Update:
    version: int
    kind: str  # update, refresh, destroy, import, ...
    result: str  # succeeded, failed, in-progress
    message: str
    start_time: Optional[datetime]
    end_time: Optional[datetime]
    config: dict[str, Any]  # key -> value (objects decoded); secrets are SECRET
    resource_changes: dict[str, int] = field(default_factory=dict)
    outputs: Optional[dict[str, Any]] = None  # the stack outputs it left, when known

    @property
    def succeeded(self) -> bool:
        return self.result == "succeeded"

    def to_dict(self, kind_of_stack: str) -> dict[str, Any]:
        return {"version": self.version, "kind": self.kind, "result": self.result,
                "message": self.message,
                "start_time": self.start_time.isoformat() if self.start_time else None,
                "end_time": self.end_time.isoformat() if self.end_time else None,
                "resource_changes": self.resource_changes,
                "settings": settings_of(kind_of_stack, self)}


def recorded_value(entry: Any) -> Any:
    """A config value of a history record -> the value: the CLI's JSON record
    `{"value", "objectValue", "secret"}`, or the Automation API's ConfigValue (which keeps an
    object as its JSON text)."""
    if isinstance(entry, dict):
        if entry.get("secret"):
            return SECRET
        if entry.get("objectValue") is not None:
            return entry["objectValue"]
        entry = entry.get("value")
    elif hasattr(entry, "secret") and hasattr(entry, "value"):
        if entry.secret:
            return SECRET
        entry = entry.value
    if isinstance(entry, str) and entry[:1] in "{[":
        try:
            return json.loads(entry)
        except json.JSONDecodeError:
            return entry
    return entry


def _field(summary: Any, name: str, default: Any = None) -> Any:
    if isinstance(summary, dict):
        return summary.get(name, default)
    return getattr(summary, name, default)


def _time(value: Any) -> Optional[datetime]:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


# `pulumi stack history` answers one page of ten updates unless asked for others (its --page-size
# defaults to 10, whatever the Automation API's docstring says), so numbering what it lists by
# position would call the eleventh update "10" forever: every page is read.
HISTORY_PAGE = 100


def every_summary(page_of: Callable[[int, int], list[Any]]) -> list[Any]:
    """Every update summary of a stack, newest first: `page_of(page_size, page)` (pages from 1)
    read until a page comes back short."""
    summaries: list[Any] = []
    page = 1
    while True:
        batch = page_of(HISTORY_PAGE, page)
        summaries.extend(batch)
        if len(batch) < HISTORY_PAGE:
            return summaries
        page += 1


def number(summaries: Iterable[Any]) -> list[Update]:
    """Updates oldest first, numbered. `summaries` come newest first, as the CLI lists them
    (Automation API UpdateSummary objects, or the CLI's JSON records)."""
    newest_first = list(summaries)
    count = len(newest_first)
    updates = []
    for index, summary in enumerate(newest_first):
        version = int(_field(summary, "version") or 0) or count - index
        config = {k: recorded_value(v) for k, v in (_field(summary, "config") or {}).items()}
        updates.append(Update(
            version=version, kind=str(_field(summary, "kind", "")),
            result=str(_field(summary, "result", "")), message=_field(summary, "message") or "",
            start_time=_time(_field(summary, "start_time", _field(summary, "startTime"))),
            end_time=_time(_field(summary, "end_time", _field(summary, "endTime"))),
            config=config,
            resource_changes=dict(_field(summary, "resource_changes",
                                         _field(summary, "resourceChanges")) or {})))
    return sorted(updates, key=lambda u: u.version)


def settings_of(kind: str, update: Update) -> dict[str, Any]:
    """The settings an operator looks for in an update, by kind of stack."""
    config = update.config
    if kind == "go-service":
        image = config.get(NAMESPACE + "image") or {}
        scaling = config.get(NAMESPACE + "scaling") or {}
        ref = image.get("ref") if isinstance(image, dict) else None
        build = image.get("build") if isinstance(image, dict) else None
        return {"image": ref or (f"build {build.get('context')}" if isinstance(build, dict) else None),
                "min_replicas": scaling.get("min_replicas") if isinstance(scaling, dict) else None,
                "max_replicas": scaling.get("max_replicas") if isinstance(scaling, dict) else None}
    if kind == "cloudflare-worker":
        rollout = config.get(NAMESPACE + "rollout") or {}
        rollout = rollout if isinstance(rollout, dict) else {}
        outputs = update.outputs or {}
        return {"version_id": outputs.get("version_id"),
                "traffic": outputs.get("traffic") or {
                    key: rollout[key] for key in ("percentage", "stable_version_id", "rollback_to")
                    if key in rollout}}
    return {"namespace": config.get(NAMESPACE + "namespace")}


def find(updates: list[Update], version: int, stack: str) -> Update:
    """The update numbered `version`, or a refusal naming the versions there are."""
    for update in updates:
        if update.version == version:
            return update
    if not updates:
        raise OpsError(f"stack '{stack}' has never been deployed: it has no updates")
    raise OpsError(f"stack '{stack}' has no update {version} (its updates are "
                   f"{updates[0].version} to {updates[-1].version}: `platform history {stack}`)")


def rollback_target(updates: list[Update], version: int, stack: str) -> Update:
    """The update a rollback may return to: one that exists and succeeded."""
    target = find(updates, version, stack)
    if target.kind != "update" or not target.succeeded:
        raise OpsError(f"stack '{stack}': update {version} is a {target.result or 'unfinished'} "
                       f"{target.kind}; roll back to a succeeded update (`platform history {stack}`)")
    return target


def restored_config(current: dict[str, Any], recorded: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The stack's `platform:` config after rolling forward to a recorded update's config.

    Plain keys take their recorded values, and plain keys the update did not have are
    removed. Secrets are neither restored nor removed: the history never holds a readable
    secret, and a secret from the past would be a rotated-out one, so every secret the stack
    sets now stays as it is. Returns the config and the secret keys the update had that the
    stack no longer sets (the operator must set those again).
    `current` holds the stack file's values, secrets as their `secure:` nodes.
    """
    ours = lambda key: key.startswith(NAMESPACE)  # noqa: E731 - a one-line predicate
    restored = {k: v for k, v in recorded.items() if ours(k) and v is not SECRET}
    restored.update({k: v for k, v in current.items() if ours(k) and holds_secure_value(v)})
    missing = sorted(k for k, v in recorded.items() if ours(k) and v is SECRET and k not in current)
    return restored, missing
