"""The difference between two offline renders of one stack (`python -m offline.render --out DIR`).

What a pull request from a fork gets instead of an engine preview: it has no credentials,
but the render needs none, and `diff` of two renders is exactly the change `pulumi up` would
send (two renders of the same input are byte-identical).
"""
from __future__ import annotations

import difflib
from pathlib import Path

from ops.errors import OpsError

# graph.json holds the same resources as the per-object files, as one document: leaving it
# out keeps each change in the diff once.
SKIPPED = {"graph.json"}


def _files(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in SKIPPED}


def render_diff(base_dir: Path, head_dir: Path, stack: str) -> tuple[list[str], list[str]]:
    """(one unified diff per differing file, the differing files) of `stack`'s two renders.

    A stack the base never rendered is all additions; the head must have rendered it.
    """
    if not (head_dir / stack).is_dir():
        raise OpsError(f"no render of stack '{stack}' in {head_dir}: render it first "
                       f"(python -m offline.render {stack} --out {head_dir})")
    base, head = _files(base_dir / stack), _files(head_dir / stack)
    chunks, changed = [], []
    for name in sorted(set(base) | set(head)):
        if base.get(name) == head.get(name):
            continue
        changed.append(name)
        chunks.append("".join(difflib.unified_diff(
            (base.get(name) or "").splitlines(keepends=True), (head.get(name) or "").splitlines(keepends=True),
            fromfile=f"base/{stack}/{name}" if name in base else "/dev/null",
            tofile=f"head/{stack}/{name}" if name in head else "/dev/null")).rstrip("\n"))
    return chunks, changed
