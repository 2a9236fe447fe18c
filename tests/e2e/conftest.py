"""Fixtures of the end-to-end suite: the built toolchain, one local cluster, one workspace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import BIN_DIR, REPO_ROOT, Workspace
from tools.cluster import Cluster

E2E_BUILD = REPO_ROOT / "build" / "e2e"


def kubernetes_contexts() -> list[str]:
    """The kubeconfig contexts the environment stack files bind their stacks to."""
    contexts = set()
    for stack_file in REPO_ROOT.glob("Pulumi.*.yaml"):
        config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
        context = (config.get("platform:kubernetes") or {}).get("context")
        if context:
            contexts.add(context)
    return sorted(contexts)


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
    try:
        yield local
    finally:
        peaks = local.stop()
        total = sum(peaks.values()) // 1024
        print(f"\ncontrol plane peak memory: {total} MiB ("
              + ", ".join(f"{n} {k // 1024}" for n, k in peaks.items()) + ")")


@pytest.fixture(scope="session")
def workspace(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace.create(tmp_path_factory.mktemp("e2e"), cluster.kubeconfig)
