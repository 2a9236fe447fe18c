"""One GitHub issue per drifted stack, from `platform drift --all --json`.

Each issue carries a hidden marker of its stack (compared whole, like the preview comments), so
the next scheduled check edits the same issue, and closes it once the stack is clean again.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

from ops.engine.report import Report
from ops.errors import OpsError
from ops.reporting.comments import LIMIT, Sections, field_lines, fit

LABEL = "drift"
MARKER = re.compile(r'^<!-- platform:drift stack="(?P<stack>[a-z0-9.-]+)" -->$')


def marker(stack: str) -> str:
    return f'<!-- platform:drift stack="{stack}" -->'


def drift_stack(body: str) -> Optional[str]:
    for line in body.splitlines():
        match = MARKER.match(line.strip())
        if match:
            return match["stack"]
    return None


def load_results(path: Path) -> dict[str, dict[str, Any]]:
    """stack -> {"status": clean|drift|error, "report": Report} from `platform drift --all --json`."""
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise OpsError(f"cannot read the drift results {path}: {error.strerror}") from None
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict) or not all(
            isinstance(v, dict) and v.get("status") in ("clean", "drift", "error") for v in document.values()):
        raise OpsError(f"{path} is not the output of `platform drift --all --json`")
    return {stack: {"status": value["status"], "report": Report.from_dict(value.get("report") or {"stack": stack})}
            for stack, value in document.items()}


def title(stack: str) -> str:
    return f"Drift: stack {stack} no longer matches what it deployed"


def issue_body(report: Report, checked: Optional[str] = None) -> str:
    stack = report.stack
    head = [marker(stack), f"The scheduled drift check{f' of {checked}' if checked else ''} found "
            f"{len(report.changed_steps)} resource(s) of `{stack}` changed behind the stack's back "
            "(live value, then the stack's):", ""]
    rows, details = [], []
    for step in report.changed_steps:
        rows.append(f"| {step.op} | `{step.name}` | `{step.type}` | "
                    + ", ".join(f"`{f.path}`" for f in step.fields[:6]) + " |")
        block = field_lines(step)
        details.append([f"**`{step.name}`**", *block, ""] if block else [])
    tail = ["**Repair**: `platform up --refresh " + stack + " --yes` puts the stack's configuration "
            "back; or, if the live change is wanted, put it into the stack's config in a pull request.",
            "", "This issue is updated by each check and closed when the stack is clean again."]
    return fit(Sections(head, rows, details, tail, details_title="Drifted fields"), LIMIT)
