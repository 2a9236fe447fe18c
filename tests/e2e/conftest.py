"""Fixtures of the end-to-end suite: the built toolchain, a local cluster per process, workspaces
with every Kubernetes stack deployed, and the engine figures gathered into one report.

`make e2e` runs the suite in several processes (pytest-xdist, `--dist loadfile`): each test
module runs whole in one process, so its module fixtures are made once. Each process has
a build folder of its own (harness.E2E_BUILD: E2E_BUILD_DIR/<worker>), a range of ports of its
own for the clusters and servers it starts (CLUSTER_PORT_RANGE), and its own session cluster;
the figures each gathers (FIGURES) are merged by the main process into one report, printed at
the end and written to E2E_BUILD_DIR/engine-figures.json.

A new module gets what it needs from here, never from an earlier module's steps: `cluster` (the
process's cluster, shared: deploy into namespaces of your own) or a `Cluster` of its own under
E2E_BUILD, `Workspace.create` for a copy of the project, and `deploy_stacks` to bring stacks up.
A shell that runs documented commands as a new operator runs in `operator_shell_env(home)`: a home
of its own for the Pulumi CLI too (PULUMI_HOME), which reads its login from the passwd entry's
home, not $HOME, so that shells of other processes never share one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tools.cluster import Cluster
from tools.cluster.cluster import PORT_RANGE_VARIABLE
from tools.cluster.contexts import environment_contexts
from tools.cluster.kube import Kube

from infra.stack_files import read_stack_config

from tests.e2e.harness import BIN_DIR, E2E_BUILD, E2E_RUN, REPO_ROOT, WORKER, Workspace, namespace_of
from tests.e2e.kube_objects import deployment_rolled_out, hpa_min, wait_for

# Figures for the report at the end of the run (benchmarks, not assertions): name -> value.
FIGURES: dict[str, str] = {}
REPORT = E2E_RUN / "engine-figures.json"
PORTS_PER_PROCESS = 1000
FIRST_PORT = 20000  # below the kernel's ephemeral ports (32768 and up): no client takes them


def kubernetes_contexts() -> list[str]:
    """The kubeconfig contexts the environment stack files bind their stacks to (the same
    function `make cluster-up` uses)."""
    return environment_contexts(REPO_ROOT)


def pytest_configure(config) -> None:
    match = re.fullmatch(r"gw(\d+)", WORKER)
    if match and PORT_RANGE_VARIABLE not in os.environ:
        low = FIRST_PORT + int(match[1]) * PORTS_PER_PROCESS
        os.environ[PORT_RANGE_VARIABLE] = f"{low}-{low + PORTS_PER_PROCESS - 1}"


@pytest.fixture(scope="session")
def toolchain() -> Path:
    """The engine toolchain, built (or found up to date) by `make engine`'s script."""
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "engine" / "build.py")], check=True)
    return BIN_DIR


@pytest.fixture(scope="session")
def cluster(toolchain: Path):
    """This process's local control plane; every process of it stops afterwards."""
    local = Cluster(directory=E2E_BUILD / "cluster", contexts=kubernetes_contexts())
    local.start()
    where = f" ({WORKER})" if WORKER else ""
    FIGURES[f"control plane start{where}"] = f"{local.ready_seconds}s to ready"
    try:
        yield local
    finally:
        peaks = local.stop()
        FIGURES[f"control plane peak memory{where}"] = (
            f"{sum(peaks.values()) // 1024} MiB (" + ", ".join(f"{n} {k // 1024}" for n, k in peaks.items()) + ")")


def rolled_out(kube: Kube, stack: str, root: Path = REPO_ROOT, timeout: float = 120) -> dict:
    """A service's Deployment once rolled out at no fewer replicas than its autoscaler's
    minimum (scaling down waits for the autoscaler's stabilisation window, minutes)."""
    namespace, name = namespace_of(stack, root), stack.split(".")[0]

    def done():
        dep = deployment_rolled_out(kube, namespace, name)
        return dep if dep and dep["spec"]["replicas"] >= hpa_min(kube, namespace, name) else None
    return wait_for(f"{stack} to roll out", done, timeout=timeout)


def deploy_stacks(ws: Workspace, kube: Kube, stacks: list[str], up: Callable[[str], str],
                  init: bool = False) -> dict[str, str]:
    """Each stack (environments first) brought up with `up` (the module's way: `pulumi up`,
    `platform up`), after `pulumi stack init` from its stack file if `init`, each Go service
    until its pods are ready; returns what each `up` printed. Modules call it from a fixture:
    a failure is then each dependent test's error, with the engine's message, and no test
    depends on another having run first."""
    printed = {}
    for stack in stacks:
        if init:
            ws.init_stack(stack)
        printed[stack] = up(stack)
        if read_stack_config(stack, ws.root).config.get("platform:kind") == "go-service":
            rolled_out(kube, stack, ws.root)
    return printed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark a test whose call failed, for fixtures that act on it in their teardown."""
    outcome = yield
    if call.when == "call" and outcome.get_result().failed:
        item.failed_call = True


def pytest_sessionfinish(session) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand the figures over
        session.config.workeroutput["engine_figures"] = dict(FIGURES)


def pytest_testnodedown(node, error) -> None:
    """The main process gathers each worker's figures."""
    FIGURES.update(getattr(node, "workeroutput", {}).get("engine_figures", {}))


def pytest_terminal_summary(terminalreporter) -> None:
    if hasattr(terminalreporter.config, "workerinput") or not FIGURES:
        return
    E2E_RUN.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(dict(sorted(FIGURES.items())), indent=2) + "\n")
    terminalreporter.section("engine figures")
    for name, value in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{name}: {value}")
    terminalreporter.write_line(f"(also in {REPORT})")


@pytest.fixture(scope="session")
def workspace(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace.create(tmp_path_factory.mktemp("e2e"), cluster.kubeconfig)
