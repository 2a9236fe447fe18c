"""One pull-request comment per stack, from the engine's structured preview of that stack.

The comment opens with a hidden marker naming its stack exactly, so that a re-run edits the
stack's own comment and no other: markers are compared whole, never by prefix (`dev` and
`dev-tokyo` are two stacks). It stays under GitHub's comment limit by cutting the field
details first, then resource rows, never the summary.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from pulumi import automation as auto

from infra.secrets import SECRET_PLACEHOLDER, hide_secrets
from ops.engine.report import Report, ReportBuilder, Step, report_from_cli_json
from ops.errors import OpsError

LIMIT = 65536  # characters GitHub accepts in one comment body
MARKER_PREFIX = "<!-- platform:preview stack="
MARKER = re.compile(r'^<!-- platform:preview stack="(?P<stack>[a-z0-9.-]+)" -->$')
SHOWN_OPS = ("create", "update", "replace", "delete")
SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-", "import": "=", "read": ">"}
VALUE_LIMIT = 300  # characters of one old or new value shown before it is cut
# Fields that hold secret material on these resource types, whatever the event says.
SECRET_FIELDS = {"kubernetes:core/v1:Secret": ("data", "stringData")}


def marker(stack: str) -> str:
    return f'{MARKER_PREFIX}"{stack}" -->'


def marked_stack(body: str) -> Optional[str]:
    """The stack a comment body belongs to, read from its marker line (None if unmarked)."""
    for line in body.splitlines():
        match = MARKER.match(line.strip())
        if match:
            return match["stack"]
    return None


def belongs_to(body: str, stack: str) -> bool:
    """Whether the comment is `stack`'s: its marker names exactly that stack."""
    return marked_stack(body) == stack


# -- reading a preview in any of its forms ---------------------------------------------------


def load_report(path: Path, stack: Optional[str] = None) -> Report:
    """A Report from `platform preview --json` (a Report), `pulumi preview --json`, or an
    engine event log (one JSON event per line, as `--event-log` writes)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise OpsError(f"cannot read the preview {path}: {error.strerror}") from None
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict) and "counts" in document and "stack" in document:
        report = Report.from_dict(document)
        if stack and report.stack != stack:
            raise OpsError(f"{path} is the preview of stack '{report.stack}', not '{stack}'")
        return report
    if isinstance(document, dict) and ("steps" in document or "changeSummary" in document):
        return report_from_cli_json(_need_stack(stack, path, "`pulumi preview --json` output"), document)
    events = _events(text) if document is None or isinstance(document, list) else None
    if events is not None:
        builder = ReportBuilder(_need_stack(stack, path, "an engine event log"))
        for event in events:
            builder(event)
        return builder.report
    raise OpsError(f"{path} is not a preview: expected the JSON of `platform preview --json`, of "
                   "`pulumi preview --json`, or an engine event log")


def _need_stack(stack: Optional[str], path: Path, what: str) -> str:
    if not stack:
        raise OpsError(f"{path} is {what}, which does not name its stack: pass --stack")
    return stack


def _events(text: str) -> Optional[list[auto.EngineEvent]]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError:
            return None
    else:
        try:
            items = [json.loads(line) for line in stripped.splitlines() if line.strip()]
        except json.JSONDecodeError:
            return None
    if not items or not all(isinstance(i, dict) and "sequence" in i for i in items):
        return None
    return [auto.EngineEvent.from_json(item) for item in items]


# -- the comment -----------------------------------------------------------------------------


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(text) > VALUE_LIMIT:
        text = f"{text[:VALUE_LIMIT]}… ({len(text) - VALUE_LIMIT} more characters)"
    return "`" + text.replace("`", "'").replace("\n", "⏎") + "`"


def field_lines(step: Step) -> list[str]:
    secret_roots = SECRET_FIELDS.get(step.type, ())
    lines = []
    for change in step.fields:
        root = change.path.split(".")[0].split("[")[0]
        old, new = hide_secrets(change.old), hide_secrets(change.new)
        if root in secret_roots:
            old = SECRET_PLACEHOLDER if old is not None else None
            new = SECRET_PLACEHOLDER if new is not None else None
        replace = " (forces replacement)" if change.kind.endswith("-replace") else ""
        kind = change.kind.removesuffix("-replace")
        if kind == "add":
            lines.append(f"  - `{change.path}` added: {_shown(new)}{replace}")
        elif kind == "delete":
            lines.append(f"  - `{change.path}` removed (was {_shown(old)}){replace}")
        else:
            lines.append(f"  - `{change.path}`: {_shown(old)} → {_shown(new)}{replace}")
    return lines


def counts_of(report: Report) -> dict[str, int]:
    """Planned operations by kind: the engine's summary, or counted from the steps."""
    counted = {op: 0 for op in SHOWN_OPS}
    if any(report.counts.get(op) for op in SHOWN_OPS):
        counted.update({op: int(report.counts.get(op) or 0) for op in SHOWN_OPS})
        return counted
    for step in report.changed_steps:
        if step.op in counted:
            counted[step.op] += 1
    return counted


@dataclass
class Sections:
    """The parts of a comment, most important first; details are cut first, then rows."""

    head: list[str]
    rows: list[str]
    details: list[list[str]]  # one block per resource (or per file of a render diff)
    tail: list[str]
    details_title: str = "Changed fields"
    details_open: bool = False


def _compose(sections: Sections, rows: int, details: int) -> str:
    lines = list(sections.head)
    if sections.rows:
        lines += ["| | resource | type | changed fields |", "|---|---|---|---|"]
        lines += sections.rows[:rows]
        if rows < len(sections.rows):
            lines.append(f"| | … and {len(sections.rows) - rows} more resources, cut to fit "
                         "GitHub's comment limit (the job summary has them all) | | |")
        lines.append("")
    shown = [block for block in sections.details[:details] if block]
    cut = sum(1 for block in sections.details[details:] if block)
    if shown:
        lines += [f"<details{' open' if sections.details_open else ''}><summary>"
                  f"{sections.details_title}</summary>", ""]
        for block in shown:
            lines += block
        if cut:
            lines.append(f"… {cut} more cut to fit GitHub's comment limit (the job summary has them).")
        lines += ["", "</details>", ""]
    elif cut:
        lines += [f"{sections.details_title}: cut to fit GitHub's comment limit (the job summary "
                  "has them).", ""]
    lines += sections.tail
    return "\n".join(lines).rstrip() + "\n"


def fit(sections: Sections, limit: int = LIMIT) -> str:
    """The fullest comment under `limit` characters: details go first, then resource rows."""
    rows, details = len(sections.rows), len(sections.details)
    body = _compose(sections, rows, details)
    while len(body) > limit and details > 0:
        details = details // 2 if details > 8 else details - 1
        body = _compose(sections, rows, details)
    while len(body) > limit and rows > 0:
        rows = rows // 2 if rows > 8 else rows - 1
        body = _compose(sections, rows, details)
    if len(body) > limit:  # the summary alone is over the limit: only absurd errors do that
        body = body[:limit - 80] + "\n\n… cut to fit GitHub's comment limit.\n"
    return body


def compared(commit: Optional[str], base: Optional[str] = None, head: Optional[str] = None) -> str:
    """Where a heading says the comment was made: the commit, and for a pull request's merge
    commit the base and head it merges, so a reader knows what was compared."""
    text = f" at {commit[:12]}" if commit else ""
    if base and head:
        text += f" (head {head[:12]} merged into base {base[:12]})"
    return text


def preview_comment(report: Report, commit: Optional[str] = None,
                    policy_pack: Optional[str] = None, limit: int = LIMIT, *,
                    base: Optional[str] = None, head: Optional[str] = None) -> str:
    """The markdown comment for one stack's preview."""
    stack = report.stack
    steps = report.changed_steps
    counts = counts_of(report)
    where = compared(commit, base, head)
    head = [marker(stack), f"### Preview of `{stack}`{where}", ""]
    if report.errors:
        head += ["**The preview failed:**", "", "```"]
        head += [line for error in report.errors for line in error.splitlines()]
        head += ["```", ""]
    if steps or any(counts.values()):
        head.append(" · ".join(f"**{counts[op]}** to {op}" for op in SHOWN_OPS))
        if counts["replace"] or counts["delete"]:
            head.append("")
            head.append("⚠️ This change **replaces or deletes** resources: review before merging.")
    elif report.new_stack:
        head.append("New stack: the backend does not hold it yet, so there is nothing to plan against "
                    "(a preview never creates a stack). Its first `platform up` creates it and "
                    "everything its stack file declares.")
    elif not report.errors:
        head.append("No changes: the stack is up to date with this commit.")
    head.append("")
    rows, details = [], []
    for step in steps:
        op = "**replace**" if step.replaces else step.op
        fields = ", ".join(f"`{f.path}`" for f in step.fields[:6])
        if len(step.fields) > 6:
            fields += f" (+{len(step.fields) - 6})"
        rows.append(f"| {SYMBOL.get(step.op, '*')} {op} | `{step.name}` | `{step.type}` | {fields} |")
        block = field_lines(step)
        details.append([f"**`{step.name}`** ({step.type}, {step.op})", *block, ""] if block else [])
    tail = []
    if report.policies:
        tail += ["**Policy results**", "", "| level | policy | resource | message |", "|---|---|---|---|"]
        for p in report.policies:
            where = f"`{p.urn.rsplit('::', 1)[-1]}`" if p.urn else "(stack)"
            message = p.message.replace("\n", " ").replace("|", "\\|")
            tail.append(f"| {p.level} | `{p.pack}/{p.policy}` | {where} | {message} |")
        tail.append("")
    elif policy_pack:
        tail += [f"Policy pack `{policy_pack}`: no violations.", ""]
    if report.warnings:
        tail += ["<details><summary>Warnings</summary>", ""]
        tail += [f"- {w.splitlines()[0]}" for w in report.warnings]
        tail += ["", "</details>", ""]
    return fit(Sections(head, rows, details, tail), limit)


def removed_comment(stack: str, env: str, commit: Optional[str] = None, limit: int = LIMIT) -> str:
    """The comment for a stack whose stack file this change removes: no teardown is implied."""
    lines = [marker(stack), f"### `{stack}` is removed by this change" + (f" ({commit[:12]})" if commit else ""), "",
             f"Its stack file `Pulumi.{stack}.yaml` is gone. Merging does **not** destroy what it "
             "deployed: the deploy workflow's teardown job runs "
             f"`platform destroy {stack} --yes` only after a reviewer approves it in the "
             f"`teardown` environment ({env}).", ""]
    return fit(Sections(lines, [], [], []), limit)


def render_diff_comment(stack: str, diff: list[str], changed: Iterable[str],
                        commit: Optional[str] = None, limit: int = LIMIT, *,
                        base: Optional[str] = None, head: Optional[str] = None) -> str:
    """The comment where no credential reaches the pull request's code (a fork's pull request,
    or an environment whose credentials pull-request code never holds, production): no engine
    preview; the offline render of base and head, compared, stands in for it."""
    files = list(changed)
    head = [marker(stack), f"### Offline render diff of `{stack}`{compared(commit, base, head)}", "",
            "No credential of this stack's environment reaches pull-request code (a fork's pull "
            "request gets none; production's stay with the deploy), so the engine did not preview it. "
            "This is the difference between the offline render (`python -m offline.render`) of "
            "the base and of this change: what `pulumi up` would send.", ""]
    if not files:
        head.append("No differences: this change renders the stack exactly as the base does.")
        return fit(Sections(head, [], [], []), limit)
    head.append(f"**{len(files)}** rendered file(s) differ: " + ", ".join(f"`{f}`" for f in files[:20])
                + (f" and {len(files) - 20} more" if len(files) > 20 else ""))
    head.append("")
    blocks = [["```diff", *chunk.splitlines(), "```", ""] for chunk in diff]
    return fit(Sections(head, [], blocks, [], details_title="Render diff", details_open=True), limit)
