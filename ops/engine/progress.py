"""Progress while the engine works: one line per resource step, as the CLI shows them."""
from __future__ import annotations

import threading
import time
from typing import TextIO

from pulumi import automation as auto

from ops.engine.report import resource_name

SYMBOL = {"create": "+", "update": "~", "delete": "-", "replace": "+-", "create-replacement": "++",
          "delete-replaced": "--", "read": ">", "refresh": "~", "import": "=", "discard": "-"}
DONE = {"create": "created", "update": "updated", "delete": "deleted", "replace": "replaced",
        "create-replacement": "created replacement", "delete-replaced": "deleted original",
        "read": "read", "refresh": "refreshed", "import": "imported", "discard": "discarded"}
QUIET = {"same", "refresh", "read"}  # nothing changes: unchanged resources, reads (a StackReference)


def _expected(message: str) -> bool:
    """The CLI's note that it runs a provider found on PATH: how this project is set up
    (tools/engine/bin), not news to the operator."""
    return message.strip().startswith("using pulumi-resource-") and "from $PATH" in message


class Progress:
    """An engine event callback printing each resource step to `stream`.

    In a preview each planned step is printed; in an update each step is printed when it
    finishes, with its duration, and a failed step with the engine's reason.
    """

    def __init__(self, stream: TextIO, stack: str, preview: bool):
        self.stream, self.stack, self.preview = stream, stack, preview
        self.started: dict[str, float] = {}
        self.lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def __call__(self, event: auto.EngineEvent) -> None:
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            op = getattr(meta.op, "value", meta.op)
            if op in QUIET or meta.type == "pulumi:pulumi:Stack":
                return
            if self.preview:
                changed = f" [{', '.join(meta.diffs)}]" if meta.diffs else ""
                self._line(f"  {SYMBOL.get(op, '*'):<2} {op:<8} {meta.type}  {resource_name(meta.urn)}{changed}")
            else:
                self.started[meta.urn] = time.monotonic()
        elif event.res_outputs_event is not None and not self.preview:
            meta = event.res_outputs_event.metadata
            op = getattr(meta.op, "value", meta.op)
            if op in QUIET or meta.type == "pulumi:pulumi:Stack":
                return
            seconds = time.monotonic() - self.started.pop(meta.urn, time.monotonic())
            self._line(f"  {SYMBOL.get(op, '*'):<2} {DONE.get(op, op):<8} {meta.type}  "
                       f"{resource_name(meta.urn)} ({seconds:.1f}s)")
        elif event.res_op_failed_event is not None:
            meta = event.res_op_failed_event.metadata
            self._line(f"  ✗  failed   {meta.type}  {resource_name(meta.urn)}")
        elif event.diagnostic_event is not None:
            d = event.diagnostic_event
            if d.ephemeral or d.severity not in ("error", "warning") or _expected(d.message):
                return
            where = f" {resource_name(d.urn)}:" if d.urn and "pulumi:pulumi:Stack" not in d.urn else ""
            message = d.message.strip().replace("\n", "\n    ")
            self._line(f"  {d.severity}:{where} {message}")
        elif event.policy_event is not None:
            p = event.policy_event
            where = f" {resource_name(p.resource_urn)}" if p.resource_urn else ""
            self._line(f"  policy {p.enforcement_level}: {p.policy_pack_name}/{p.policy_name}{where}: "
                       f"{p.message.strip()}")
        elif event.summary_event is not None:
            counts = {getattr(k, "value", k): v for k, v in
                      (event.summary_event.resource_changes or {}).items() if v}
            text = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no changes"
            self._line(f"{self.stack}: {text} ({event.summary_event.duration_seconds}s)")
