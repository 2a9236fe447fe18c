"""What an engine operation did or would do to one stack, as data.

Built from the Automation API's structured events (or from `pulumi preview --json`), it is
what `platform preview --json` prints, what `platform drift` judges and what
`platform preview-comment` turns into a pull-request comment. Values the engine marks secret
arrive as "[secret]" and stay so.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Optional

from pulumi import automation as auto

from infra.secrets import SECRET_PLACEHOLDER, is_secret_wrapper

# Operations that change nothing.
UNCHANGED = {"same", "read", "refresh", "discard"}
# The engine plans a replacement as several steps; one line per resource says "replace".
REPLACEMENT_STEPS = {"replace", "create-replacement", "delete-replaced", "discard-replaced",
                     "read-replacement", "import-replacement"}


def resource_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


@dataclass
class FieldChange:
    """One changed property: its path, the kind of change, and the values (secrets masked)."""

    path: str
    kind: str  # add, update, delete, each with "-replace" when it forces a replacement
    old: Any = None
    new: Any = None


@dataclass
class Step:
    op: str
    urn: str
    type: str
    name: str
    fields: list[FieldChange] = field(default_factory=list)

    @property
    def replaces(self) -> bool:
        return self.op in REPLACEMENT_STEPS

    @property
    def changes(self) -> bool:
        return self.op not in UNCHANGED


@dataclass
class PolicyResult:
    pack: str
    policy: str
    level: str  # advisory, mandatory, remediate, disabled
    message: str
    urn: Optional[str] = None


@dataclass
class Report:
    stack: str
    steps: list[Step] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    policies: list[PolicyResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: bool = False  # the engine stopped: a program error, a policy violation, ...
    # Not in the backend yet: a preview never creates a stack, so the engine planned nothing;
    # the stack's first `up` creates it and everything in it (warnings say so).
    new_stack: bool = False

    @property
    def changed_steps(self) -> list[Step]:
        """One entry per changed resource (a replacement's several steps count once)."""
        seen: dict[str, Step] = {}
        for step in self.steps:
            if not step.changes:
                continue
            if step.urn in seen:
                if step.replaces:
                    seen[step.urn] = Step("replace", step.urn, step.type, step.name,
                                          seen[step.urn].fields or step.fields)
                continue
            seen[step.urn] = step if not step.replaces else Step(
                "replace", step.urn, step.type, step.name, step.fields)
        return list(seen.values())

    @property
    def has_changes(self) -> bool:
        return bool(self.changed_steps)

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "counts": self.counts,
                "steps": [{**asdict(s), "replaces": s.replaces} for s in self.changed_steps],
                "policies": [asdict(p) for p in self.policies],
                "errors": self.errors, "warnings": self.warnings, "failed": self.failed,
                **({"new_stack": True} if self.new_stack else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Report":
        steps = [Step(s["op"], s["urn"], s["type"], s.get("name") or resource_name(s["urn"]),
                      [FieldChange(**f) for f in s.get("fields", [])]) for s in data.get("steps", [])]
        return cls(stack=data.get("stack", ""), steps=steps, counts=dict(data.get("counts") or {}),
                   policies=[PolicyResult(**p) for p in data.get("policies", [])],
                   errors=list(data.get("errors", [])), warnings=list(data.get("warnings", [])),
                   failed=bool(data.get("failed", False)), new_stack=bool(data.get("new_stack", False)))


# One step of an engine property path: `name`, `[0]`, or `["a.key/with-dots"]`.
_PATH_PART = re.compile(r'\.?([^.\[\]"]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')


def path_parts(path: str) -> list[str | int]:
    """The steps of a property path such as `spec.template.spec.containers[0].image` or
    `metadata.labels["app.kubernetes.io/name"]` (a quoted key may hold dots)."""
    parts: list[str | int] = []
    for name, index, quoted in _PATH_PART.findall(path):
        if index:
            parts.append(int(index))
        elif name:
            parts.append(name)
        else:
            parts.append(re.sub(r"\\(.)", r"\1", quoted))
    return parts


def _lookup(values: Any, path: str) -> Any:
    """The value at a property path (see path_parts)."""
    current = values
    for part in path_parts(path):
        if is_secret_wrapper(current):
            return SECRET_PLACEHOLDER
        if isinstance(part, str) and isinstance(current, dict):
            current = current.get(part)
        elif isinstance(part, int) and isinstance(current, list) and part < len(current):
            current = current[part]
        else:
            return None
    return SECRET_PLACEHOLDER if is_secret_wrapper(current) else current


def _masked(value: Any, secret: bool) -> Any:
    return SECRET_PLACEHOLDER if secret and value is not None else value


def _is_secret_path(path: str, secret_roots: set[str]) -> bool:
    root = path.split(".")[0].split("[")[0]
    return root in secret_roots


def field_changes(old: Optional[dict], new: Optional[dict], detailed: Optional[dict[str, str]],
                  diffs: Iterable[str], secret_roots: Iterable[str] = ()) -> list[FieldChange]:
    """The changed properties of a step, with their old and new input values.

    `secret_roots` names top-level inputs that are secret (their values are never shown).
    """
    old, new, roots = old or {}, new or {}, set(secret_roots)
    paths = dict(detailed or {}) or {d: "update" for d in diffs}
    out = []
    for path, kind in sorted(paths.items()):
        secret = _is_secret_path(path, roots)
        out.append(FieldChange(path=path, kind=kind, old=_masked(_lookup(old, path), secret),
                               new=_masked(_lookup(new, path), secret)))
    return out


def _diff_kind(diff: Any) -> str:
    kind = getattr(diff, "diff_kind", None)
    return getattr(kind, "value", kind) or "update"


def step_from_event(metadata: auto.StepEventMetadata) -> Step:
    op = getattr(metadata.op, "value", metadata.op)
    detailed = {path: _diff_kind(d) for path, d in (metadata.detailed_diff or {}).items()}
    old_inputs = metadata.old.inputs if metadata.old else None
    new_inputs = metadata.new.inputs if metadata.new else None
    return Step(op=op, urn=metadata.urn, type=metadata.type, name=resource_name(metadata.urn),
                fields=field_changes(old_inputs, new_inputs, detailed, metadata.diffs or []))


class ReportBuilder:
    """Collects one operation's engine events into a Report."""

    def __init__(self, stack: str):
        self.report = Report(stack=stack)

    def __call__(self, event: auto.EngineEvent) -> None:
        if event.resource_pre_event is not None:
            self.report.steps.append(step_from_event(event.resource_pre_event.metadata))
        elif event.summary_event is not None:
            self.report.counts = {getattr(k, "value", k): v for k, v in
                                  (event.summary_event.resource_changes or {}).items()}
        elif event.policy_event is not None:
            p = event.policy_event
            self.report.policies.append(PolicyResult(
                pack=p.policy_pack_name, policy=p.policy_name, level=p.enforcement_level,
                message=p.message.strip(), urn=p.resource_urn))
        elif event.diagnostic_event is not None:
            d = event.diagnostic_event
            if d.ephemeral:
                return
            if d.severity == "error":
                self.report.errors.append(d.message.strip())
            elif d.severity == "warning":
                self.report.warnings.append(d.message.strip())


def report_from_cli_json(stack: str, document: dict[str, Any]) -> Report:
    """A Report from `pulumi preview --json` output."""
    report = Report(stack=stack)
    for step in document.get("steps") or []:
        old, new = step.get("oldState") or {}, step.get("newState") or {}
        detailed = {path: (d.get("kind") or "update")
                    for path, d in (step.get("detailedDiff") or {}).items()}
        report.steps.append(Step(
            op=step.get("op", ""), urn=step.get("urn", ""),
            type=new.get("type") or old.get("type") or "",
            name=resource_name(step.get("urn", "")),
            fields=field_changes(old.get("inputs"), new.get("inputs"), detailed,
                                 step.get("diffReasons") or [])))
    report.counts = dict(document.get("changeSummary") or {})
    for diagnostic in document.get("diagnostics") or []:
        severity, message = diagnostic.get("severity"), (diagnostic.get("message") or "").strip()
        if severity == "error":
            report.errors.append(message)
        elif severity == "warning":
            report.warnings.append(message)
    for policy in document.get("policies") or []:
        report.policies.append(PolicyResult(
            pack=policy.get("policyPackName", ""), policy=policy.get("policyName", ""),
            level=policy.get("enforcementLevel", ""), message=(policy.get("message") or "").strip(),
            urn=policy.get("resourceUrn")))
    return report
