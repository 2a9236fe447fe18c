"""Offline render: what `pulumi up` would send, per stack, with no credentials and no cloud.

    python -m offline.render [STACK ...] [--out DIR]

Runs the real program under the mock engine with each stack's real config and writes
DIR/<stack>/: one YAML file per Kubernetes object, one JSON file per Cloudflare resource, and
graph.json (every resource and the stack outputs). StackReferences resolve by rendering the
referenced environment stack. Secrets appear as `[secret]`, cloud-assigned values as `[unknown]`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import yaml

from infra.errors import PlatformError
from infra.project import PROJECT_ROOT
from infra.secrets import SECRET_PLACEHOLDER
from infra.stack_files import discover_stacks, read_stack_config
from infra.stacks import parse_stack_name
from offline.mock_engine import StackRun, redact, run_stack, shutdown

DEFAULT_OUT = PROJECT_ROOT / "build" / "render"


def normalize(value: Any) -> Any:
    """Numbers cross the engine as floats: give integral ones back their integer form."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


class Renderer:
    """Renders stacks, reusing each environment stack's run for the stacks that reference it."""

    def __init__(self, root: Path = PROJECT_ROOT,
                 overrides: Optional[dict[str, dict[str, Any]]] = None):
        self.root = root
        self.overrides = overrides or {}
        self.runs: dict[str, StackRun] = {}

    def run(self, stack: str) -> StackRun:
        if stack not in self.runs:
            parse_stack_name(stack, self.root)
            config = read_stack_config(stack, self.root, self.overrides.get(stack))
            self.runs[stack] = run_stack(stack, config, resolve_stack=self._outputs_of,
                                         root=self.root)
        return self.runs[stack]

    def _outputs_of(self, qualified_name: str) -> dict[str, Any]:
        # "organization/platform/staging" -> the environment stack "staging" in this repo.
        return self.run(qualified_name.split("/")[-1]).outputs


def object_files(run: StackRun) -> dict[str, str]:
    """File name -> content for every Kubernetes object and Cloudflare resource of a run."""
    files: dict[str, str] = {}
    for resource in run.resources:
        inputs = normalize(redact(resource.inputs, run.secret_values))
        if resource.type.startswith("kubernetes:"):
            meta = inputs.get("metadata", {})
            name = f"{inputs['kind'].lower()}-{meta.get('name')}.yaml"
            files[name] = yaml.safe_dump(inputs, sort_keys=True, default_flow_style=False)
        elif resource.type.startswith("cloudflare:"):
            kind = resource.type.split(":")[-1].lower()
            files[f"{kind}-{resource.name}.json"] = json.dumps(
                {"type": resource.type, "name": resource.name, "inputs": inputs},
                indent=2, sort_keys=True) + "\n"
    return files


def graph(run: StackRun) -> dict[str, Any]:
    outputs = {k: (SECRET_PLACEHOLDER if k in run.secret_outputs else v) for k, v in run.outputs.items()}
    return {
        "stack": run.stack,
        "resources": [{"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent,
                       "provider": r.provider, "protect": r.protect,
                       "inputs": normalize(redact(r.inputs, run.secret_values))}
                      for r in sorted(run.resources, key=lambda r: r.urn)],
        "outputs": normalize(redact(outputs, run.secret_values)),
    }


def write_stack(run: StackRun, out: Path) -> Path:
    """Write a stack's files into out/<stack>/, replacing what was there only on success."""
    target = out / run.stack
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run.stack}-", dir=out))
    try:
        for name, content in object_files(run).items():
            (staging / name).write_text(content)
        (staging / "graph.json").write_text(json.dumps(graph(run), indent=2, sort_keys=True) + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def render(stacks: list[str], out: Path, renderer: Optional[Renderer] = None) -> list[str]:
    """Render the stacks; return one message per stack that failed (its files are untouched)."""
    renderer = renderer or Renderer()
    failures = []
    for stack in stacks:
        try:
            write_stack(renderer.run(stack), out)
        except PlatformError as error:
            failures.append(str(error))
    return failures


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.render", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*", metavar="STACK",
                        help="stacks to render (default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT.relative_to(PROJECT_ROOT)})")
    args = parser.parse_args(argv)
    stacks = args.stacks or discover_stacks()
    try:
        failures = render(stacks, args.out)
    finally:
        shutdown()
    for message in failures:
        print(f"error: {message}", file=sys.stderr)
    rendered = len(stacks) - len(failures)
    print(f"rendered {rendered} of {len(stacks)} stack(s) into {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
