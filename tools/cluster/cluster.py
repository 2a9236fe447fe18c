"""A Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok faking one node, from the binaries in tools/engine/bin/; with what the
stacks expect of a cluster besides: the Prometheus operator's CRDs (taken from its Go module by
the engine build) and a stand-in ingress controller (`ingress_admitter`).

Every start generates fresh TLS material and service-account keys (`pki`), picks free
ports, writes an admin kubeconfig into the cluster folder (with the context `local` and every
context the environment stack files name), and waits until the API
server is ready, the fake node is Ready and the controllers have created the `default`
ServiceAccount; it fails with the log tail of the process at fault otherwise. Every
process it starts is stopped on `stop()`, on a failed start, and on interrupt; the
folder's `state.json` lets another process (`python -m tools.cluster down`) stop them.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .contexts import environment_contexts
from .kube import ApiError, Kube
from .pki import write_pki

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = REPO_ROOT / "tools" / "engine" / "bin"
DEFAULT_DIR = REPO_ROOT / "build" / "cluster"
SERVICE_CIDR = "10.96.0.0/16"
NODE_NAME = "kwok-node-0"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
MONITORING_CRDS = "monitoring-crds"  # folder in bin/ (tools/engine/build.py)


class ClusterError(RuntimeError):
    pass


# Processes that start clusters side by side (the e2e suite's, one per pytest-xdist worker) each
# take ports from a range of their own, `CLUSTER_PORT_RANGE=20000-20999`: two processes never
# pick the same port between checking it is free and binding it. Without it: any free port.
PORT_RANGE_VARIABLE = "CLUSTER_PORT_RANGE"
_handed_out: list[int] = []  # the ports of the range already given, in order


def free_port() -> int:
    span = os.environ.get(PORT_RANGE_VARIABLE)
    if not span:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    low, high = (int(part) for part in span.split("-"))
    size = high - low + 1
    start = (_handed_out[-1] - low + 1) if _handed_out else 0
    # Round the range, never handing out the same port twice in a row before it is bound.
    for offset in range(size):
        port = low + (start + offset) % size
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.append(port)
        return port
    raise ClusterError(f"no free port in {PORT_RANGE_VARIABLE}={span}")


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the process that started us dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def peak_rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


@dataclass
class Cluster:
    """One local control plane living in `directory`."""

    directory: Path = DEFAULT_DIR
    bin_dir: Path = BIN_DIR
    timeout: float = 120.0
    # Children die with their parent (tests); `up` from the command line leaves them running.
    tie_to_parent: bool = True
    # Kubeconfig contexts to write besides `local`, all pointing at this cluster (the stack
    # files bind each environment to a context by name): by default, the repository's.
    contexts: list[str] = field(default_factory=environment_contexts)
    extra_apiserver_flags: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    started_at: float = 0.0
    ready_seconds: float = 0.0

    # -- paths ---------------------------------------------------------------------------------

    @property
    def pki(self) -> Path:
        return self.directory / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    def log(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}.log"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def client(self) -> Kube:
        return Kube(self.kubeconfig, context="local")

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "Cluster":
        missing = [c for c in (*COMPONENTS, MONITORING_CRDS) if not (self.bin_dir / c).exists()]
        if missing:
            raise ClusterError(f"missing {', '.join(missing)} in {self.bin_dir}: run `make engine` first")
        if self.state_file.exists():
            stop_recorded(self.directory)
        shutil.rmtree(self.directory, ignore_errors=True)
        (self.directory / "logs").mkdir(parents=True)
        self.started_at = time.monotonic()
        previous = signal.getsignal(signal.SIGTERM)
        # An interrupt (SIGINT raises KeyboardInterrupt; SIGTERM too, here) stops what was started.
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            write_pki(self.pki)
            self.ports = {name: free_port() for name in
                          ("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kwok")}
            self._write_kubeconfig()
            self._start_etcd()
            self._start_apiserver()
            self._wait("the API server to become ready", self._apiserver_ready, "kube-apiserver")
            self._start_controller_manager()
            self._start_scheduler()
            self._start_kwok()
            self._create_node()
            self._wait(f"node {NODE_NAME} to become Ready", self._node_ready, "kwok")
            self._wait("the controllers to create the default ServiceAccount",
                       self._default_service_account, "kube-controller-manager")
            self._install_monitoring_crds()
            self._start_ingress_admitter()
        except BaseException:
            self.stop()
            raise
        finally:
            if previous in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.ready_seconds = round(time.monotonic() - self.started_at, 1)
        self._write_state()
        return self

    def stop(self) -> dict:
        """Stop every process this cluster started; returns their peak memory (KiB)."""
        peaks = {name: peak_rss_kib(proc.pid) for name, proc in self.processes.items()}
        # Clients first, etcd last, so that nothing logs errors about the others vanishing.
        for name in reversed(list(self.processes)):
            _terminate(self.processes[name])
        self.processes.clear()
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        return peaks

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.processes.items()}

    def peak_memory_kib(self) -> dict[str, int]:
        return {name: peak_rss_kib(proc.pid) for name, proc in self.processes.items()}

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def answer_to(self, contexts: list[str]) -> None:
        """Make the running cluster's kubeconfig answer to these contexts too (an environment
        added by its stack file since the cluster started: what `make cluster-up` would write)."""
        self.contexts = sorted(set(self.contexts) | set(contexts))
        self._write_kubeconfig()

    # -- pieces --------------------------------------------------------------------------------

    def _write_kubeconfig(self) -> None:
        # JSON is YAML: the kubeconfig needs no YAML library.
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {
                "server": self.server, "certificate-authority": str(self.pki / "ca.crt")}}],
            "users": [{"name": "local-admin", "user": {
                "client-certificate": str(self.pki / "admin.crt"),
                "client-key": str(self.pki / "admin.key")}}],
            "contexts": [{"name": name, "context": {"cluster": "local", "user": "local-admin"}}
                         for name in ["local", *self.contexts]],
            "current-context": "local",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2) + "\n")

    def _spawn(self, name: str, binary: str, args: list[str], command: list[str] | None = None) -> None:
        log = open(self.log(name), "wb")
        try:
            self.processes[name] = subprocess.Popen(
                [*(command or [str(self.bin_dir / binary)]), *args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.directory, start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)} if command else None,
                preexec_fn=_die_with_parent if self.tie_to_parent else None,
            )
        finally:
            log.close()
        self._write_state()

    def _start_etcd(self) -> None:
        etcd, peer = self.ports["etcd"], self.ports["etcd_peer"]
        self._spawn("etcd", "etcd", [
            "--name=local", f"--data-dir={self.directory / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd}", f"--advertise-client-urls=http://127.0.0.1:{etcd}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=local=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync", "--quota-backend-bytes=536870912", "--log-level=warn",
        ])

    def _start_apiserver(self) -> None:
        pki = self.pki
        self._spawn("kube-apiserver", "kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.ports['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            # Privileged pods are allowed by the server itself, so that Pod Security admission
            # (on by default) is what turns them away from a restricted namespace.
            "--allow-privileged=true",
            "--profiling=false", "--enable-priority-and-fairness=false",
            "--endpoint-reconciler-type=none",
            *self.extra_apiserver_flags,
        ])

    def _start_controller_manager(self) -> None:
        self._spawn("kube-controller-manager", "kube-controller-manager", [
            *self._controller_flags("controller_manager"),
            f"--service-account-private-key-file={self.pki / 'sa.key'}", f"--root-ca-file={self.pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--use-service-account-credentials=false", "--leader-elect=false", "--profiling=false",
            # There are no metrics here: the autoscaler only holds replicas within min..max,
            # which it then does within seconds rather than the default 15.
            "--horizontal-pod-autoscaler-sync-period=2s",
        ])

    def _start_scheduler(self) -> None:
        self._spawn("kube-scheduler", "kube-scheduler", [
            *self._controller_flags("scheduler"), "--leader-elect=false", "--profiling=false",
        ])

    def _controller_flags(self, port: str) -> list[str]:
        """What both controllers need: the cluster's kubeconfig for everything, and a secure
        port of their own on loopback."""
        return [f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={self.ports[port]}"]

    def _start_kwok(self) -> None:
        self._spawn("kwok", "kwok", [
            f"--kubeconfig={self.kubeconfig}", f"--config={self.bin_dir / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.244.0.0/16", "--node-ip=10.244.0.1",
            f"--server-address=127.0.0.1:{self.ports['kwok']}",
        ])

    def _install_monitoring_crds(self) -> None:
        """ServiceMonitor and PrometheusRule, as a cluster with the Prometheus operator has them
        before any Go-service stack with monitoring on is deployed."""
        import yaml  # the CRDs come as YAML; the project's virtualenv has PyYAML

        kube = self.client()
        served = []  # the list path of each kind, which answers once its storage is ready
        for path in sorted((self.bin_dir / MONITORING_CRDS).glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            kube.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
            spec = crd["spec"]
            version = next(v["name"] for v in spec["versions"] if v.get("served"))
            served.append(f"/apis/{spec['group']}/{version}/{spec['names']['plural']}")

        def listed() -> bool:
            # Established first, then a moment of "storage is (re)initializing" (429): a list
            # that answers is what a client (the provider) needs.
            try:
                return all(isinstance(kube.get(path).get("items"), list) for path in served)
            except ApiError:
                return False

        self._wait("the Prometheus operator's CRDs to be served", listed, "kube-apiserver")

    def _start_ingress_admitter(self) -> None:
        self._spawn("ingress-admitter", "", [
            "-m", "tools.cluster.ingress_admitter", f"--kubeconfig={self.kubeconfig}",
        ], command=[sys.executable])

    def _create_node(self) -> None:
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"type": "kwok", "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": "local-a"},
            },
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake"},
            },
        }
        self.client().create("/api/v1/nodes", node)

    # -- readiness -----------------------------------------------------------------------------

    def _apiserver_ready(self) -> bool:
        try:
            return self.client().get("/readyz") == "ok"
        except (ApiError, OSError):
            return False

    def _node_ready(self) -> bool:
        node = self.client().get(f"/api/v1/nodes/{NODE_NAME}")
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _default_service_account(self) -> bool:
        return self.client().exists("/api/v1/namespaces/default/serviceaccounts/default")

    def _wait(self, what: str, check, suspect: str) -> None:
        deadline = self.started_at + self.timeout
        while True:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise ClusterError(
                        f"{name} exited with code {proc.returncode} while waiting for {what}; "
                        f"last lines of {self.log(name)}:\n{_tail(self.log(name))}")
            with contextlib.suppress(ApiError, OSError):
                if check():
                    return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"timed out after {self.timeout:.0f}s waiting for {what}; "
                    f"last lines of {self.log(suspect)}:\n{_tail(self.log(suspect))}")
            time.sleep(0.25)

    def _write_state(self) -> None:
        self.state_file.write_text(json.dumps({
            "pids": {name: proc.pid for name, proc in self.processes.items()},
            "ports": self.ports,
            "kubeconfig": str(self.kubeconfig),
        }, indent=2) + "\n")


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _terminate(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        # The process is gone; anything left in its group is not.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_recorded(directory: Path = DEFAULT_DIR, grace: float = 10.0) -> list[int]:
    """Stop the processes a cluster started from another process recorded in state.json."""
    state_file = directory / "state.json"
    if not state_file.exists():
        return []
    pids = list(json.loads(state_file.read_text()).get("pids", {}).values())
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    state_file.unlink()
    return pids
