"""`platform affected`: the stacks a change touches, for CI to preview and deploy exactly those.

    platform affected --base REF [--head REF] [--json] [--github-output FILE]
    git diff --name-status main | platform affected [--json]     (changed paths on stdin)
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.errors import OpsError
from ops.project import Project

if TYPE_CHECKING:
    from ops.planning.impact import Affected

MAX_REASONS = 3  # in the text output; --json lists every one


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "affected", help="the stacks a change touches (environment stacks first)",
        description="List the stacks a change touches, from the repository's structure: stack "
                    "files, what each stack's config names, source folders, the program modules "
                    "each kind uses. Removed stack files are listed apart: a teardown is never "
                    "implied. Without --base, reads changed paths (or `git diff --name-status` "
                    "lines) on stdin and judges them against the working folder.")
    parser.add_argument("--base", metavar="REF",
                        help="the commit the change starts from (a pull request's base, the "
                             "commit before a push); the diff is taken from where HEAD left it")
    parser.add_argument("--head", metavar="REF", default="HEAD",
                        help="the commit the change ends at (default: HEAD)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: stacks with reasons, removed stacks, changed workloads, "
                             "and GitHub Actions matrices")
    parser.add_argument("--github-output", metavar="FILE", type=Path,
                        help="also append each matrix as `name=<json>` to FILE ($GITHUB_OUTPUT)")
    parser.set_defaults(run=run)


def compute(args: argparse.Namespace) -> "Affected":
    # Imported here: the config models and the SDK they import cost every other command time.
    from infra.stacks import promotion_order
    from ops.planning.git import FolderTree, GitRepo, parse_name_status
    from ops.planning.impact import affected_stacks

    project = Project.at(args.project_dir)
    if args.base is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise OpsError("give --base REF (and --head REF), or pipe the changed paths on stdin")
        changes = parse_name_status(sys.stdin)
        repo = GitRepo.find(project.root)
        result = affected_stacks(changes, FolderTree(project.root),
                                 repo.tree("HEAD") if repo and _has_head(repo) else None)
        result.promotion = promotion_order(project.root)
        return result
    repo = GitRepo.at(project.root)
    base = repo.commit(args.base, "--base")
    head = repo.commit(args.head, "--head")
    start = repo.merge_base(base, head)
    result = affected_stacks(repo.diff(start, head), repo.tree(head), repo.tree(start))
    result.base, result.head = start, head
    result.promotion = promotion_order(project.root)
    return result


def _has_head(repo) -> bool:
    try:
        repo.commit("HEAD", "HEAD")
        return True
    except OpsError:
        return False


def github_matrices(result: "Affected") -> dict[str, Any]:
    """GitHub Actions matrices (lists of `include` entries) and flags, by output name: the
    format the workflows read (`--github-output`, and `matrix` in `--json`)."""
    from infra.config.loader import COMPONENT_KINDS
    from infra.stacks import promotion_order
    from ops.planning.impact import AffectedStack, stack_order

    def entry(s: AffectedStack, after: str = "") -> dict[str, Any]:
        return {"stack": s.stack, "env": s.env, "component": s.component or "", "kind": s.kind,
                "after": after}

    affected = {s.stack for s in result.stacks}
    out: dict[str, Any] = {
        "stacks": result.names,
        "any": bool(result.stacks),
        "environments": [entry(s) for s in result.stacks if s.is_environment],
        "components": [entry(s) for s in result.stacks if not s.is_environment],
        "removed": [entry(s) for s in sorted(result.removed, key=lambda s: stack_order(
            s.env, not s.is_environment, s.stack))],  # components before their environment
        "python": result.python,
    }
    order = result.promotion or promotion_order()
    for index, env in enumerate(order):
        out[f"{env}-environment"] = [entry(s) for s in result.stacks if s.is_environment and s.env == env]
        components = []
        for s in result.stacks:
            if s.is_environment or s.env != env:
                continue
            # The same component's stack in the environment before this one, when this
            # change deploys it too: a deploy promotes it only once that one succeeded.
            earlier = [f"{s.component}.{e}" for e in order[:index]
                       if f"{s.component}.{e}" in affected]
            components.append(entry(s, after=earlier[-1] if earlier else ""))
        out[f"{env}-components"] = components
        # Every stack of the environment, its environment stack first: what one job per stack
        # previews before the environment's updates are approved (deploy), or renders (preview).
        out[f"{env}-stacks"] = [e["stack"] for e in out[f"{env}-environment"]] + [e["stack"] for e in components]
    for kind in COMPONENT_KINDS:
        out[f"workloads-{kind}"] = [asdict(w) for w in result.workloads if w.kind == kind]
    return out


def github_outputs(result: "Affected") -> str:
    lines = []
    for name, value in github_matrices(result).items():
        text = json.dumps(value, separators=(",", ":")) if not isinstance(value, bool) else str(value).lower()
        lines.append(f"{name}={text}\n")
    return "".join(lines)


def text(result: "Affected") -> str:
    if not result.stacks and not result.removed:
        return "no stack is affected\n"
    width = max(len(s.stack) for s in [*result.stacks, *result.removed])
    lines = []
    for stack in result.stacks:
        lines.append(f"{stack.stack:<{width}}  {stack.kind:<17}  {stack.reasons[0]}")
        lines.extend(f"{'':<{width}}  {'':<17}  {reason}" for reason in stack.reasons[1:MAX_REASONS])
        if len(stack.reasons) > MAX_REASONS:
            lines.append(f"{'':<{width}}  {'':<17}  (and {len(stack.reasons) - MAX_REASONS} more: --json)")
    for stack in result.removed:
        lines.append(f"{stack.stack:<{width}}  removed: its stack file is gone; its resources stay "
                     f"deployed until `platform destroy {stack.stack} --yes`")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    result = compute(args)
    if args.github_output:
        with args.github_output.open("a") as out:
            out.write(github_outputs(result))
    if args.json:
        document: dict[str, Any] = {**result.to_dict(), "matrix": github_matrices(result)}
        print(json.dumps(document, indent=2))
    else:
        sys.stdout.write(text(result))
    return 0
