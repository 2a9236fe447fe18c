"""Benchmark: whole-process time and peak memory of running each stack's program offline.

    python -m offline.bench [STACK ...] [--repeat N]

Each stack runs in a fresh process (as `pulumi up` would start one), with its environment
stack's outputs read from a render made beforehand, so a figure is that stack's own cost.
The provider SDKs a stack imported are listed: Kubernetes stacks must not pay for Cloudflare's.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from infra.errors import PlatformError
from infra.project import PROJECT_ROOT
from infra.stack_files import discover_stacks

SDK_PREFIXES = ("pulumi_kubernetes", "pulumi_cloudflare", "pulumi_docker")


def run_one(stack: str, outputs_file: Path) -> dict[str, Any]:
    """Child side: run one stack, report the provider SDKs it imported."""
    from infra.stack_files import read_stack_config
    from offline.mock_engine import run_stack

    references = json.loads(outputs_file.read_text())
    run = run_stack(stack, read_stack_config(stack),
                    resolve_stack=lambda name: references[name.split("/")[-1]])
    sdks = sorted({m.split(".")[0] for m in sys.modules if m.startswith(SDK_PREFIXES)})
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux reports KiB
    return {"stack": stack, "resources": len(run.resources), "sdks": sdks,
            "peak_mib": peak_kib / 1024}


def measure(stack: str, outputs_file: Path) -> dict[str, Any]:
    """Parent side: one child process, timed whole (interpreter start-up included)."""
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-m", "offline.bench", "--one", stack,
                            "--outputs", str(outputs_file)], cwd=PROJECT_ROOT,
                           capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if child.returncode != 0:  # the stack's own message (bad config, a Worker not built)
        raise PlatformError(child.stderr.strip().removeprefix("error: ") or
                            f"benchmark of {stack} exited {child.returncode}")
    report = json.loads(child.stdout.strip().splitlines()[-1])
    report.update(seconds=elapsed)
    return report


def environment_outputs() -> dict[str, Any]:
    from offline.render import Renderer

    renderer = Renderer()
    return {s: renderer.run(s).outputs for s in discover_stacks() if "." not in s}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.bench", description=__doc__)
    parser.add_argument("stacks", nargs="*", metavar="STACK")
    parser.add_argument("--repeat", type=int, default=3, help="runs per stack (median reported)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--outputs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        return one(args.one, args.outputs) if args.one else benchmark(args.stacks or discover_stacks(),
                                                                       args.repeat)
    except PlatformError as error:  # one message, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 1


def one(stack: str, outputs_file: Path) -> int:
    from offline.mock_engine import shutdown

    try:
        print(json.dumps(run_one(stack, outputs_file)))
    finally:
        shutdown()
    return 0


def benchmark(stacks: list[str], repeat: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        outputs_file = Path(folder) / "environments.json"
        outputs_file.write_text(json.dumps(environment_outputs()))
        print(f"{'stack':<26} {'median s':>9} {'peak MiB':>9} {'resources':>9}  provider SDKs")
        for stack in stacks:
            runs = [measure(stack, outputs_file) for _ in range(repeat)]
            seconds = statistics.median(r["seconds"] for r in runs)
            peak = max(r["peak_mib"] for r in runs)
            print(f"{stack:<26} {seconds:>9.2f} {peak:>9.0f} {runs[-1]['resources']:>9}  "
                  f"{', '.join(runs[-1]['sdks'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
