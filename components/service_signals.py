"""What a Go service's telemetry says and promises: the facts its alerts and dashboard share."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence


@dataclass(frozen=True)
class ServiceSignals:
    """One Go service as Prometheus sees it.

    The platform's metric convention: `<prefix>_http_requests_total{route,method,code}`,
    the histogram `<prefix>_http_request_duration_seconds{route,method,code}` and the gauge
    `<prefix>_http_requests_in_flight`; optionally
    `<prefix>_circuit_breaker_state` (0 closed, 1 half-open, 2 open) with
    `<prefix>_circuit_breaker_transitions_total{from,to}` and, per callee,
    `<prefix>_<callee>_calls_total{outcome}` with the histogram
    `<prefix>_<callee>_call_duration_seconds{outcome}`. Scraped through its ServiceMonitor,
    every series carries `namespace` and `job` (the Service's name). Its containers' CPU and
    memory come from the kubelet (cAdvisor), their requests, limits and restarts from
    kube-state-metrics, under `namespace` and `container` (the service's name).
    """

    service: str  # the Kubernetes name: Prometheus job, Deployment, HPA, PDB and container
    namespace: str
    metric_prefix: str
    availability: float  # objective in percent, e.g. 99.9
    latency_p99_seconds: float  # the objective of every route not in route_latency_p99_seconds
    excluded_paths: Sequence[str] = ()  # probes and metrics: machines asking, not users
    circuit_breaker: bool = False
    outbound_calls: Sequence[str] = ()
    cpu_target_utilization: int | None = None  # the HPA's target, % of the CPU request
    route_latency_p99_seconds: Mapping[str, float] = field(default_factory=dict)  # route: p99

    def route_matcher(self, operator: str, routes: Sequence[str]) -> str:
        """A matcher on the route label (`=~` or `!~`) for these paths; a method prefix
        ("GET /readyz") is matched too."""
        alternatives = "|".join(re.escape(path) for path in sorted(set(routes)))
        return f"route{operator}{promql_string(f'(.+ )?({alternatives})')}"

    @property
    def error_budget(self) -> float:
        """The share of requests allowed to fail (0.001 for 99.9 %)."""
        return round(1 - self.availability / 100, 10)

    def selector(self, **extra: str) -> str:
        """The label matchers of the service's own series, plus `extra` ones."""
        labels = {"namespace": self.namespace, "job": self.service, **extra}
        return ",".join(f"{key}={promql_string(value)}" for key, value in labels.items())

    @property
    def user_routes(self) -> str:
        """A matcher leaving out the probe and metrics routes (empty when there are none).
        The route label is the path pattern (the gateway labels /readyz so); a method prefix
        ("GET /readyz") is matched too."""
        if not self.excluded_paths:
            return ""
        return self.route_matcher("!~", self.excluded_paths)


def promql_string(value: str) -> str:
    """`value` as a PromQL string literal. PromQL reads double-quoted strings with Go's
    escapes, which refuse what a regex escape leaves behind (`\\-`, `\\.`): every backslash
    and quote is escaped again, control characters as `\\u00XX`."""
    return json.dumps(value, ensure_ascii=False)


def number(value: float) -> str:
    """A threshold as PromQL reads it, without float noise (0.0144, not 0.014400000000000001)."""
    return f"{value:.6g}"
