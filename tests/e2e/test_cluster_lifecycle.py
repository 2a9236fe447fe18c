"""The local cluster leaves nothing running: after a stop, a failed start, or an interrupt."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.cluster import Cluster, ClusterError
from tools.cluster.cluster import pid_alive

from tests.e2e.harness import E2E_BUILD, REPO_ROOT

BUILD = E2E_BUILD


def processes_under(directory: Path) -> list[int]:
    """Pids of live processes whose command line names `directory` (each component's does)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmdline and int(proc.name) != os.getpid() and pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def test_a_stopped_cluster_leaves_no_process(toolchain):
    cluster = Cluster(directory=BUILD / "lifecycle-stop").start()
    pids = cluster.pids()
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
                         "ingress-admitter"}
    assert all(pid_alive(p) for p in pids.values())
    kube = cluster.client()
    assert kube.get("/api/v1/nodes/kwok-node-0")["metadata"]["name"] == "kwok-node-0"
    # What the stacks expect of a cluster: the operator's CRDs served, Ingresses admitted.
    for plural in ("servicemonitors", "prometheusrules"):
        assert kube.get(f"/apis/monitoring.coreos.com/v1/namespaces/default/{plural}")["items"] == []
    kube.create("/apis/networking.k8s.io/v1/namespaces/default/ingresses", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "probe"},
        "spec": {"ingressClassName": "nginx", "defaultBackend": {
            "service": {"name": "none", "port": {"number": 80}}}}})
    deadline = time.monotonic() + 20
    while not kube.get("/apis/networking.k8s.io/v1/namespaces/default/ingresses/probe").get(
            "status", {}).get("loadBalancer", {}).get("ingress"):
        assert time.monotonic() < deadline, "the stand-in ingress controller admitted nothing"
        time.sleep(0.2)

    cluster.stop()

    assert [p for p in pids.values() if pid_alive(p)] == []
    assert processes_under(cluster.directory) == []
    assert not cluster.state_file.exists()


def test_a_failed_start_says_why_and_leaves_no_process(toolchain):
    cluster = Cluster(directory=BUILD / "lifecycle-fail", timeout=60,
                      extra_apiserver_flags=["--no-such-flag=1"])
    with pytest.raises(ClusterError, match=r"(?s)kube-apiserver exited .*no-such-flag"):
        cluster.start()
    assert processes_under(cluster.directory) == []


def _as_from_a_terminal() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then keeps it ignored;
    # the operator's Ctrl-C comes from a terminal, where it is not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_start_leaves_no_process(toolchain, signum):
    directory = BUILD / f"lifecycle-interrupt-{signum.name}"
    # A state.json left by an earlier run would have the signal sent before the start.
    shutil.rmtree(directory, ignore_errors=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.cluster", "up", "--foreground", "--dir", str(directory)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_as_from_a_terminal,
    )
    # Interrupt once the API server runs, before the cluster is ready.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = directory / "state.json"
        if state.exists() and "kube-apiserver" in json.loads(state.read_text() or "{}").get("pids", {}):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the API server never started")
    proc.send_signal(signum)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"`tools.cluster up --foreground` did not stop within 60s of {signum.name}:\n{out}")
    assert "interrupted; stopped what was started" in out or "cluster: stopped" in out, out
    assert processes_under(directory) == []


def test_up_and_down_from_the_command_line(toolchain):
    directory = BUILD / "lifecycle-cli"
    up = subprocess.run([sys.executable, "-m", "tools.cluster", "up", "--dir", str(directory)],
                        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "ready in" in up.stdout
    pids = json.loads((directory / "state.json").read_text())["pids"].values()
    assert all(pid_alive(p) for p in pids)

    down = subprocess.run([sys.executable, "-m", "tools.cluster", "down", "--dir", str(directory)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)

    assert down.returncode == 0, down.stdout + down.stderr
    assert [p for p in pids if pid_alive(p)] == []
    assert processes_under(directory) == []
