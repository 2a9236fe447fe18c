"""The network policies, proven offline: network-config-analyzer computes each environment's
connectivity from the rendered NetworkPolicies (the local cluster enforces none), and it must
equal the call graph the stack configs declare: callers (and, for a NodePort or LoadBalancer
Service, its source ranges) in on the service port, peers out on theirs, DNS for every pod, and
nothing else. Proven for the repository's environments as they are, for the minimal fixture
project's, with a second service added to an environment, and with a service opened outside."""
from __future__ import annotations

import pytest

from offline.connectivity import NAME_LABEL, Endpoint, Environment, config_of, ranges
from offline.render import Renderer

from tests.conftest import Stack, stacks_of


class DeclaredEnvironment(Environment):
    """An environment with the connectivity its stack configs declare, to hold the analyser's to."""

    def declared(self) -> dict[tuple[str, str], frozenset]:
        """The connectivity the configs declare, for every edge touching the namespace."""
        edges: dict[tuple[str, str], set] = {}

        def allow(src: Endpoint | str, dst: Endpoint | str, protocol: str, port) -> None:
            edges.setdefault((str(src), str(dst)), set()).add((protocol, str(port)))

        dns = self.env_config.get("dns") or {}
        dns_endpoints = [e for e in self.endpoints if e.matches(
            dns.get("namespace", "kube-system"), dns.get("pod_labels", {"k8s-app": "kube-dns"}))]
        by_name = {name: config for name, config in self.services}
        own = [e for e in self.endpoints if e.namespace == self.namespace]
        for pod in own:
            for dns_pod in dns_endpoints:
                allow(pod, dns_pod, "TCP", 53)
                allow(pod, dns_pod, "UDP", 53)
        for name, config in self.services:
            (service,) = [e for e in own if e.name == name]
            port = int(config.get("port", 8080))
            for caller in config.get("callers", []):
                for src in self.endpoints:
                    inside_needs_peer = src.namespace == self.namespace
                    if src.matches(caller["namespace"], caller.get("pod_labels") or {}) and (
                            not inside_needs_peer or self._peers_with(by_name.get(src.name), service)):
                        allow(src, service, "TCP", port)
            for block in config.get("service_source_ranges", []):
                for span in ranges(block, []):
                    allow(span, service, "TCP", port)
            for peer in config.get("peers", []):
                for port in peer["ports"]:
                    if peer.get("cidr"):
                        for span in ranges(peer["cidr"], peer.get("except_cidrs", [])):
                            allow(service, span, "TCP", port)
                        continue
                    for dst in self.endpoints:
                        if not dst.matches(peer["namespace"], peer.get("pod_labels") or {}):
                            continue
                        # Inside the namespace the destination's own policy must admit it too.
                        if dst.namespace != self.namespace or self._calls(by_name.get(dst.name), service):
                            allow(service, dst, "TCP", port)
        return {edge: frozenset(c) for edge, c in edges.items()}

    @staticmethod
    def _calls(config: dict | None, caller: Endpoint) -> bool:
        return bool(config) and any(caller.matches(c["namespace"], c.get("pod_labels") or {})
                                    for c in config.get("callers", []))

    @staticmethod
    def _peers_with(config: dict | None, target: Endpoint) -> bool:
        return bool(config) and any(p.get("namespace") and target.matches(
            p["namespace"], p.get("pod_labels") or {}) for p in config.get("peers", []))


ENVIRONMENTS_WITH_SERVICES = sorted({s.environment for s in stacks_of("go-service")}, key=str)


@pytest.mark.parametrize("env", ENVIRONMENTS_WITH_SERVICES, ids=str)
def test_each_environment_connects_exactly_as_its_stacks_declare(renderers, tmp_path, env: Stack):
    services = [(renderers.of(s.root), s.name, {}) for s in stacks_of("go-service")
                if s.environment == env]
    environment = DeclaredEnvironment(env.name, services)
    assert environment.analysed(tmp_path) == environment.declared()


def test_a_second_service_in_the_environment_is_reached_only_by_its_declared_caller(tmp_path):
    # billing: called by the gateway only, reaching nothing but DNS; the gateway names it a peer.
    gateway_stack = "api-gateway.staging"
    gateway_config = config_of(gateway_stack, {})
    namespace = Renderer().run("staging").outputs["namespace"]
    gateway = {"peers": gateway_config["peers"] + [
        {"namespace": namespace, "pod_labels": {NAME_LABEL: "billing"}, "ports": [9090]}]}
    billing = {"name": "billing", "port": 9090, "peers": [], "expose": None,
               "callers": [{"namespace": namespace, "pod_labels": {NAME_LABEL: "api-gateway"}}]}
    environment = DeclaredEnvironment("staging", [
        (Renderer(overrides={gateway_stack: {f"platform:{k}": v for k, v in gateway.items()}}),
         gateway_stack, gateway),
        (Renderer(overrides={gateway_stack: {f"platform:{k}": v for k, v in billing.items()}}),
         gateway_stack, billing)])
    analysed = environment.analysed(tmp_path)
    assert analysed == environment.declared()
    assert analysed[(f"{namespace}/api-gateway", f"{namespace}/billing")] == {("TCP", "9090")}
    # Besides the gateway, only the environment's Prometheus (monitoring is on) reaches it.
    prometheus = Renderer().run("staging").outputs["monitoring"]["namespace"] + "/"
    assert not [edge for edge in analysed if edge[1] == f"{namespace}/billing"
                and edge[0] != f"{namespace}/api-gateway" and not edge[0].startswith(prometheus)], \
        "billing admits an undeclared caller"


def test_a_service_opened_outside_is_reached_from_its_source_ranges_only(tmp_path):
    stack = "api-gateway.staging"
    outside = {"service_type": "LoadBalancer",
               "service_source_ranges": ["203.0.113.0/24", "198.51.100.16/28"]}
    environment = DeclaredEnvironment("staging", [
        (Renderer(overrides={stack: {f"platform:{k}": v for k, v in outside.items()}}),
         stack, outside)])
    analysed = environment.analysed(tmp_path)
    assert analysed == environment.declared()
    namespace = Renderer().run("staging").outputs["namespace"]
    port = str(config_of(stack, {}).get("port", 8080))
    from_outside = {src: conns for (src, dst), conns in analysed.items()
                    if dst == f"{namespace}/api-gateway" and src[0].isdigit()}
    assert from_outside == {"203.0.113.0-203.0.113.255": {("TCP", port)},
                            "198.51.100.16-198.51.100.31": {("TCP", port)}}
