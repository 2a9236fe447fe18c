"""Which pods may reach which, as network-config-analyzer computes it from an environment's
rendered NetworkPolicies (the local cluster enforces none, so an independent analyser is the
proof). tests/test_network_connectivity.py holds it equal to the call graph the stack configs
declare; `python -m offline.architecture` draws it in ARCHITECTURE.md.

The analyser runs from its own virtualenv (`make scanners` installs it into .scanners/nca).
"""
from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.project import PROJECT_ROOT
from infra.stack_files import read_stack_config
from offline.render import Renderer, object_files

NCA = PROJECT_ROOT / ".scanners" / "nca" / "bin" / "nca"
NAME_LABEL = "app.kubernetes.io/name"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
ANY_POD = {"platform-test/any-pod": "true"}  # a pod standing for "every pod there"


@dataclass(frozen=True)
class Endpoint:
    namespace: str
    name: str
    labels: tuple  # sorted (key, value) pairs

    def matches(self, namespace: str, labels: dict) -> bool:
        return self.namespace == namespace and set(labels.items()) <= set(self.labels)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def config_of(stack: str, overrides: dict, root: Path = PROJECT_ROOT) -> dict[str, Any]:
    raw = read_stack_config(stack, root, overrides={f"platform:{k}": v for k, v in overrides.items()})
    return {k.split(":", 1)[1]: (json.loads(v) if v[:1] in "{[" else v)
            for k, v in raw.config.items() if k.startswith("platform:")}


def ranges(cidr: str, excepts: list[str]) -> set[str]:
    """An address block less its exceptions, as first-last ranges (how the analyser prints)."""
    blocks = [ipaddress.ip_network(cidr)]
    for carved in map(ipaddress.ip_network, excepts):
        blocks = [piece for block in blocks
                  for piece in (block.address_exclude(carved) if carved.subnet_of(block) else [block])]
    spans: list[list] = []
    for block in sorted(blocks):
        if spans and int(block.network_address) == int(spans[-1][1]) + 1:
            spans[-1][1] = block.broadcast_address
        else:
            spans.append([block.network_address, block.broadcast_address])
    return {f"{first}-{last}" for first, last in spans}


def connections(text: str) -> frozenset:
    """`{protocols:TCP, UDP,dst_ports:53}` as {(protocol, port)}; `All connections` as ALL."""
    if text.strip() == "All connections":
        return frozenset({("ALL", "ALL")})
    found = set()
    for part in re.findall(r"\{protocols:([^}]*?),dst_ports:([^}]*)\}", text):
        for protocol in part[0].split(", "):
            for port in part[1].split(","):
                found.add((protocol.strip(), port.strip()))
    return frozenset(found)


def environment_callers(config: dict, environment: dict) -> list[dict]:
    """The callers a service declares through its environment's settings rather than its own
    `callers`: the ingress controller when it is exposed, Prometheus when monitoring is on."""
    found = []
    if config.get("expose"):
        found.append({"namespace": environment["ingress"]["namespace"],
                      "pod_labels": environment["ingress"]["pod_labels"]})
    if environment["monitoring"]["enabled"]:
        found.append({"namespace": environment["monitoring"]["namespace"],
                      "pod_labels": environment["monitoring"]["prometheus_pod_labels"]})
    return found


class AnalyserMissing(RuntimeError):
    """network-config-analyzer is not installed, or computed nothing."""


class Environment:
    """One environment's rendered objects, the service configs behind them, and stand-ins for
    every pod the configs name outside the rendered stacks (callers, peers, DNS), plus an
    undeclared pod inside the namespace and one outside it."""

    def __init__(self, env: str, services: list[tuple[Renderer, str, dict]]):
        renderer = services[0][0]
        environment = renderer.run(env)
        self.env_config = config_of(env, {}, renderer.root)
        self.namespace = environment.outputs["namespace"]
        self.objects = [yaml.safe_load(t) for n, t in object_files(environment).items()
                        if n.endswith(".yaml")]
        self.services = []
        for renderer, stack, overrides in services:
            config = config_of(stack, overrides, renderer.root)
            config["callers"] = config.get("callers", []) + environment_callers(
                config, environment.outputs)
            self.objects += [yaml.safe_load(t) for n, t in object_files(renderer.run(stack)).items()
                             if n.endswith(".yaml")]
            self.services.append((config.get("name") or stack.split(".")[0], config))
        self.endpoints = [Endpoint(o["metadata"]["namespace"], o["metadata"]["name"],
                                   tuple(sorted(o["spec"]["template"]["metadata"]["labels"].items())))
                          for o in self.objects if o["kind"] == "Deployment"]
        dns = self.env_config.get("dns") or {}
        wanted = [(dns.get("namespace", "kube-system"), dns.get("pod_labels", {"k8s-app": "kube-dns"}))]
        for _, config in self.services:
            wanted += [(c["namespace"], c.get("pod_labels") or {}) for c in config.get("callers", [])]
            wanted += [(p["namespace"], p.get("pod_labels") or {}) for p in config.get("peers", [])
                       if p.get("namespace")]
        wanted += [(self.namespace, {NAME_LABEL: "undeclared"}), ("elsewhere", {NAME_LABEL: "undeclared"})]
        for index, (namespace, labels) in enumerate(wanted):
            if not any(e.matches(namespace, labels) for e in self.endpoints):
                labels = labels or ANY_POD
                self.endpoints.append(Endpoint(namespace, f"stand-in-{index}",
                                               tuple(sorted(labels.items()))))

    def manifests(self, folder: Path) -> tuple[Path, Path]:
        policies, resources = folder / "policies", folder / "resources"
        policies.mkdir()
        resources.mkdir()
        for obj in self.objects:
            kind, name = obj["kind"], obj["metadata"]["name"]
            target = policies if kind == "NetworkPolicy" else resources
            if kind in ("NetworkPolicy", "Deployment", "Namespace"):
                (target / f"{kind}-{name}.yaml").write_text(yaml.safe_dump(obj))
        stand_ins = []
        for namespace in sorted({e.namespace for e in self.endpoints} - {self.namespace}):
            stand_ins.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": namespace, "labels": {NAMESPACE_LABEL: namespace}}})
        for endpoint in self.endpoints:
            if endpoint.name.startswith("stand-in-"):
                stand_ins.append({"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "name": endpoint.name, "namespace": endpoint.namespace,
                    "labels": dict(endpoint.labels)},
                    "spec": {"containers": [{"name": "c", "image": "stand-in"}]}})
        (resources / "stand-ins.yaml").write_text(yaml.safe_dump_all(stand_ins))
        return policies, resources

    def analysed(self, folder: Path) -> dict[tuple[str, str], frozenset]:
        """The connectivity network-config-analyzer computes, for every edge touching the
        namespace."""
        if not NCA.exists():
            raise AnalyserMissing(".scanners/nca is missing: `make scanners` installs it (`make test` does)")
        policies, resources = self.manifests(folder)
        result = subprocess.run([str(NCA), "--connectivity", str(policies), "--resource_list",
                                 str(resources), "--output_format", "txt_no_fw_rules"],
                                capture_output=True, text=True, timeout=300)
        edges = {}
        for line in result.stdout.splitlines():
            match = re.match(r"^(\S+) => (\S+) : (.*)$", line)
            if not match:
                continue
            src, dst = (re.sub(r"\[\w+\]$", "", end) for end in match.group(1, 2))
            if self.namespace + "/" in src or self.namespace + "/" in dst:
                edges[(src, dst)] = connections(match.group(3))
        if not edges:
            raise AnalyserMissing(f"the analyser found no connectivity at all:\n{result.stdout}{result.stderr}")
        return edges
