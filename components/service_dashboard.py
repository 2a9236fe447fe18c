"""ServiceDashboard: a Grafana dashboard of one Go service, as a ConfigMap Grafana's dashboard
sidecar picks up by its labels. The dashboard is built with Grafana's own SDK
(grafana-foundation-sdk), so its JSON follows the schema of the Grafana release it targets."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import pulumi
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row, ThresholdsConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphThresholdsStyleMode
from grafana_foundation_sdk.models.dashboard import Threshold, ThresholdsMode
from pulumi_kubernetes.core.v1 import ConfigMap

from components.kubernetes_objects import service_metadata
from components.service_signals import ServiceSignals, number, promql_string

RATE = "$__rate_interval"  # Grafana's window: at least four scrape intervals


def _query(expr: str, legend: str) -> PrometheusQuery:
    return PrometheusQuery().expr(expr).legend_format(legend)


def _line(value: float) -> ThresholdsConfig:
    """A threshold at `value` (the objective a series is judged against)."""
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=None, color="green"), Threshold(value=value, color="red")])


def _drawn_as_line() -> GraphThresholdsStyleConfig:
    return GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.LINE)


def dashboard_json(signals: ServiceSignals) -> dict[str, Any]:
    """The dashboard of one service: traffic, errors against the SLO, latency against its
    target, replicas against the HPA bounds, saturation (CPU against the HPA's target, memory
    against the limit, restarts, requests in flight), calls to its dependencies, circuit
    breaker."""
    s, prefix = signals, signals.metric_prefix
    users = ("," + s.user_routes) if s.user_routes else ""
    own = "{" + s.selector() + users + "}"
    # The routes with an objective of their own have their own latency panels.
    shared = "{" + s.selector() + users + (
        "," + s.route_matcher("!~", list(s.route_latency_p99_seconds))
        if s.route_latency_p99_seconds else "") + "}"
    errors = "{" + s.selector() + ',code=~"5.."' + users + "}"
    hpa = f'{{namespace="{s.namespace}",horizontalpodautoscaler="{s.service}"}}'
    builder = (
        Dashboard(f"{s.service} ({s.namespace})")
        .uid(f"{s.namespace}-{s.service}"[:40])
        .tags(["platform", "go-service", s.service])
        .refresh("1m")
        .time("now-6h", "now")
        .with_row(Row("Traffic and objectives"))
        .with_panel(Timeseries().title("Request rate by route").unit("reqps").span(12)
                    .with_target(_query(f"sum by (route, code) (rate({prefix}_http_requests_total{own}[{RATE}]))",
                                        "{{route}} {{code}}")))
        .with_panel(Timeseries().title(f"Error ratio (SLO {number(s.availability)}%: budget "
                                       f"{number(s.error_budget * 100)}%)")
                    .unit("percentunit").min(0).span(12)
                    .thresholds(_line(s.error_budget)).thresholds_style(_drawn_as_line())
                    # No 5xx series exists until the first 5xx: `or vector(0)` shows 0, not
                    # "No data", while there is traffic.
                    .with_target(_query(
                        f"(sum(rate({prefix}_http_requests_total{errors}[{RATE}])) or vector(0))\n/\n"
                        f"sum(rate({prefix}_http_requests_total{own}[{RATE}]))", "5xx ratio")))
        .with_panel(_latency(prefix, shared, s.latency_p99_seconds,
                             "Latency" + (" of the other routes" if s.route_latency_p99_seconds
                                          else "")))
        .with_panel(Timeseries().title("Replicas against the autoscaler's bounds").min(0).span(12)
                    .targets([
                        _query(f"max(kube_horizontalpodautoscaler_{series}{hpa})", legend)
                        for series, legend in (("status_current_replicas", "current"),
                                               ("spec_min_replicas", "min"),
                                               ("spec_max_replicas", "max"))]))
    )
    for route, seconds in sorted(s.route_latency_p99_seconds.items()):
        routed = "{" + s.selector() + "," + s.route_matcher("=~", [route]) + "}"
        builder = builder.with_panel(_latency(prefix, routed, seconds, f"Latency of {route}"))
    builder = _saturation(builder, s)
    if s.outbound_calls or s.circuit_breaker:
        builder = builder.with_row(Row("Dependencies"))
    for callee in s.outbound_calls:
        calls = f"{prefix}_{callee}_call"
        builder = (builder
                   .with_panel(Timeseries().title(f"{callee} calls by outcome").unit("reqps").span(12)
                               .with_target(_query(f"sum by (outcome) (rate({calls}s_total{{{s.selector()}}}[{RATE}]))",
                                                   "{{outcome}}")))
                   .with_panel(Timeseries().title(f"{callee} call latency p99 by outcome").unit("s").span(12)
                               .with_target(_query(
                                   f"histogram_quantile(0.99, sum by (outcome, le) (rate("
                                   f"{calls}_duration_seconds_bucket{{{s.selector()}}}[{RATE}])))",
                                   "{{outcome}}"))))
    if s.circuit_breaker:
        builder = builder.with_panel(
            Stat().title("Circuit breaker (0 closed, 1 half-open, 2 open)").span(12)
            .thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([
                Threshold(value=None, color="green"), Threshold(value=1, color="orange"),
                Threshold(value=2, color="red")]))
            .with_target(_query(f"max({prefix}_circuit_breaker_state{{{s.selector()}}})", "state")))
    encoded = JSONEncoder(sort_keys=True).encode(builder.build())
    return json.loads(encoded)


def _latency(prefix: str, selector: str, objective: float, title: str) -> Timeseries:
    """p50, p90 and p99 of the requests `selector` picks, against their p99 objective."""
    return (Timeseries().title(f"{title} (p99 target {number(objective * 1000)} ms)")
            .unit("s").min(0).span(12)
            .thresholds(_line(objective)).thresholds_style(_drawn_as_line())
            .targets([_query(
                f"histogram_quantile({q}, sum by (le) (rate("
                f"{prefix}_http_request_duration_seconds_bucket{selector}[{RATE}])))", f"p{label}")
                for q, label in ((0.5, "50"), (0.9, "90"), (0.99, "99"))]))


def _saturation(builder: Dashboard, s: ServiceSignals) -> Dashboard:
    """How full the service runs: CPU against the autoscaler's target, memory against the
    limit (the OOM kill), restarts, and requests in flight."""
    containers = f"namespace={promql_string(s.namespace)},container={promql_string(s.service)}"
    cpu = (Timeseries().title("CPU against the autoscaler's target (share of the request)")
           .unit("percentunit").min(0).span(12)
           .with_target(_query(
               f"sum(rate(container_cpu_usage_seconds_total{{{containers}}}[{RATE}]))\n/\n"
               f'sum(kube_pod_container_resource_requests{{{containers},resource="cpu"}})',
               "CPU used / requested")))
    if s.cpu_target_utilization is not None:
        cpu = cpu.thresholds(_line(s.cpu_target_utilization / 100)).thresholds_style(
            _drawn_as_line())
    return (builder
            .with_row(Row("Saturation"))
            .with_panel(cpu)
            .with_panel(Timeseries().title("Memory against the limit, by pod")
                        .unit("percentunit").min(0).span(12)
                        .thresholds(_line(1)).thresholds_style(_drawn_as_line())
                        .with_target(_query(
                            f"max by (pod) (container_memory_working_set_bytes{{{containers}}})"
                            f"\n/ on (pod)\nmax by (pod) (kube_pod_container_resource_limits"
                            f'{{{containers},resource="memory"}})', "{{pod}}")))
            .with_panel(Timeseries().title("Container restarts, by pod").min(0).span(12)
                        .with_target(_query(
                            f"sum by (pod) (increase(kube_pod_container_status_restarts_total"
                            f"{{{containers}}}[{RATE}]))", "{{pod}}")))
            .with_panel(Timeseries().title("Requests in flight, by pod").min(0).span(12)
                        .with_target(_query(
                            f"sum by (pod) ({s.metric_prefix}_http_requests_in_flight"
                            f"{{{s.selector()}}})", "{{pod}}"))))


@dataclass(frozen=True)
class ServiceDashboardArgs:
    namespace: pulumi.Input[str]
    signals: ServiceSignals
    labels: Mapping[str, str] = field(default_factory=dict)  # the sidecar's selector, and ours


class ServiceDashboard(pulumi.ComponentResource):
    """A ConfigMap holding the service's dashboard JSON, labelled for Grafana's sidecar."""

    def __init__(self, name: str, args: ServiceDashboardArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:service_dashboard:ServiceDashboard", name, None, opts)
        document = json.dumps(dashboard_json(args.signals), indent=2, sort_keys=True) + "\n"
        ConfigMap(f"{name}-dashboard", metadata=service_metadata(
            name, args.namespace, args.labels, object_name=f"{name}-dashboard"),
            data={f"{name}.json": document}, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
