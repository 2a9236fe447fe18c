"""Benchmark of whole environments: a generated environment of N Go-service stacks on the local
cluster, and the offline render of many stacks.

    python -m tools.bench.fleet [--services 20] [--render 50,100,200] [--out build/bench-fleet.json]

On a copy of the project (the repository is not touched) with a file backend and a control plane
of its own: `platform up --env bench` from nothing with --parallel 1, destroyed, then with
--parallel 4; `platform preview --env bench` with --parallel 1 and 4; each run's wall time,
the peak memory of the whole process tree (`platform`, the CLIs, language hosts and providers
it runs, summed at each sample), and the slowest single stack of the run. Then the offline
render of a project of R Go-service stacks for each R given: its time and peak memory, to
show how the time grows with the number of stacks.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.e2e.harness import REPO_ROOT, Workspace
from tools.cluster import Cluster
from tools.cluster.contexts import environment_contexts

ENV = "bench"
TEMPLATE_SERVICE = "api-gateway.staging"


def generate(root: Path, env: str, services: int) -> list[str]:
    """Environment `env` and `services` Go-service stacks in it, from staging's stack files, in
    a project of no other stacks."""
    for path in root.glob("Pulumi.*.yaml"):
        path.unlink()
    # Its own namespace and domain, on staging's cluster context.
    text = (REPO_ROOT / "Pulumi.staging.yaml").read_text()
    text = text.replace("platform:namespace: platform-staging", f"platform:namespace: platform-{env}")
    text = text.replace("staging.example.com", f"{env}.example.com")
    # Room for every service's pods and their requests and limits.
    text = text.replace('requests_cpu: "4"', f'requests_cpu: "{services}"').replace(
        'limits_cpu: "8"', f'limits_cpu: "{services * 4}"').replace(
        "requests_memory: 8Gi", f"requests_memory: {services}Gi").replace(
        "limits_memory: 16Gi", f"limits_memory: {services * 2}Gi").replace(
        "pods: 40", f"pods: {services * 4 + 10}")
    (root / f"Pulumi.{env}.yaml").write_text(text)
    service = (REPO_ROOT / f"Pulumi.{TEMPLATE_SERVICE}.yaml").read_text()
    names = []
    for index in range(1, services + 1):
        name = f"svc-{index:03d}"
        (root / f"Pulumi.{name}.{env}.yaml").write_text(
            service.replace("subdomain: api", f"subdomain: {name}"))
        names.append(f"{name}.{env}")
    return names


class TreeMemory:
    """Peak of the summed resident memory of a process and its descendants, sampled."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid, self.interval, self.peak_kib = pid, interval, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(parent, []).append(int(proc.name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    def _sample(self) -> None:
        while not self.done.wait(self.interval):
            total = 0
            for pid in self._tree():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                except OSError:
                    continue
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.peak_kib


def timed_platform(ws: Workspace, *args: str) -> dict[str, Any]:
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "ops", *args, "--json"], cwd=ws.root,
                               env={**ws.env(), "PYTHONPATH": str(ws.root)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(process.pid)
    out, err = process.communicate(timeout=7200)
    peak = memory.stop()
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"`platform {' '.join(args)}` exited {process.returncode}:\n{out[-3000:]}{err[-3000:]}")
    summary = json.loads(out)
    per_stack = [s["seconds"] for s in summary["stacks"] if s["seconds"] is not None]
    return {"command": "platform " + " ".join(args), "wall_s": round(seconds, 1),
            "peak_tree_mib": round(peak / 1024), "stacks": len(summary["stacks"]),
            "slowest_stack_s": max(per_stack), "sum_of_stacks_s": round(sum(per_stack), 1)}


def render_figures(base: Path, counts: list[int]) -> list[dict[str, Any]]:
    figures = []
    for count in counts:
        project = base / f"render-{count}"
        shutil.copytree(REPO_ROOT, project, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", "build", "node_modules", ".venv", "bin", ".scanners", ".toolchain"))
        generate(project, ENV, count - 1)
        started = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run([sys.executable, "-m", "offline.render", "--out", str(project / "build")],
                                cwd=project, env={**os.environ, "PYTHONPATH": str(project)},
                                capture_output=True, text=True)
        seconds = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise SystemExit(f"offline.render of {count} stacks failed:\n{result.stderr[-3000:]}")
        figures.append({"stacks": count, "wall_s": round(seconds, 1),
                        "per_stack_ms": round(seconds * 1000 / count),
                        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
                        "peak_mib": round(after.ru_maxrss / 1024)})
        shutil.rmtree(project)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=20, help="Go-service stacks in the environment")
    parser.add_argument("--render", default="50,100,200", help="stack counts to render offline")
    parser.add_argument("--skip-engine", action="store_true", help="only the offline render")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "bench-fleet.json")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"services": args.services, "engine": [], "render": []}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
        base = Path(folder)
        if not args.skip_engine:
            cluster = Cluster(directory=base / "cluster", contexts=environment_contexts(REPO_ROOT))
            cluster.start()
            try:
                ws = Workspace.create(base / "ws", cluster.kubeconfig)
                generate(ws.root, ENV, args.services)
                runs = [("up", "--env", ENV, "--yes", "--parallel", "1"),
                        ("preview", "--env", ENV, "--parallel", "1"),
                        ("preview", "--env", ENV, "--parallel", "4"),
                        ("destroy", "--env", ENV, "--yes", "--parallel", "4"),
                        ("up", "--env", ENV, "--yes", "--parallel", "4"),
                        ("destroy", "--env", ENV, "--yes", "--parallel", "4")]
                for run in runs:
                    figure = timed_platform(ws, *run)
                    figures["engine"].append(figure)
                    print(json.dumps(figure), flush=True)
            finally:
                cluster.stop()
        counts = [int(c) for c in args.render.split(",") if c]
        figures["render"] = render_figures(base, counts)
        for figure in figures["render"]:
            print(json.dumps(figure), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
