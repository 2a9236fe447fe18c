"""Fixtures of the end-to-end suite: the built toolchain, one local cluster, one workspace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import BIN_DIR, E2E_BUILD, REPO_ROOT, Workspace
from tools.cluster import Cluster
from tools.cluster.contexts import environment_contexts

# Figures for the summary at the end of the run (benchmarks, not assertions).
FIGURES: dict[str, str] = {}


def kubernetes_contexts() -> list[str]:
    """The kubeconfig contexts the environment stack files bind their stacks to (the same
    function `make cluster-up` uses)."""
    return environment_contexts(REPO_ROOT)


@pytest.fixture(scope="session")
def toolchain() -> Path:
    """The engine toolchain, built (or found up to date) by `make engine`'s script."""
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "engine" / "build.py")], check=True)
    return BIN_DIR


@pytest.fixture(scope="session")
def cluster(toolchain: Path):
    """One local control plane for the session; every process of it stops afterwards."""
    local = Cluster(directory=E2E_BUILD / "cluster", contexts=kubernetes_contexts())
    local.start()
    FIGURES["control plane start"] = f"{local.ready_seconds}s to ready"
    try:
        yield local
    finally:
        peaks = local.stop()
        FIGURES["control plane peak memory"] = (
            f"{sum(peaks.values()) // 1024} MiB (" + ", ".join(f"{n} {k // 1024}" for n, k in peaks.items()) + ")")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark a test whose call failed, for fixtures that act on it in their teardown."""
    outcome = yield
    if call.when == "call" and outcome.get_result().failed:
        item.failed_call = True


def pytest_sessionstart(session) -> None:
    (E2E_BUILD / "timings.json").unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter) -> None:
    timings = E2E_BUILD / "timings.json"
    if timings.exists():
        data = json.loads(timings.read_text())
        for stack, seconds in data.get("up_seconds", {}).items():
            FIGURES[f"{stack}"] = (f"pulumi up {seconds}s, infra.render "
                                   f"{data.get('render_seconds', {}).get(stack)}s")
    if FIGURES:
        terminalreporter.section("engine figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def workspace(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace.create(tmp_path_factory.mktemp("e2e"), cluster.kubeconfig)
