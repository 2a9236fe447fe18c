"""The alert rules of one Go service, as Prometheus rule groups (the PrometheusRule's spec).

Availability is an SLO on the share of requests answered without a 5xx, alerted by burn rate
over two windows each (the multi-window, multi-burn-rate alerts of Google's SRE workbook): a
page when 2 % of a 30-day budget burns in an hour (14.4x over 1 h and 5 m) or 5 % in six hours
(6x over 6 h and 30 m), a ticket when the budget burns exactly as fast as it accrues (1x over
3 d and 6 h). The short window lets an alert stop soon after the errors do. Those ratios exist
only while the service's pods are scraped: a total outage (every pod gone, crash-looping or cut
off from Prometheus) stops the series and silences them, so `ServiceDown` pages on the scrape
itself (`up`, and `absent()` when no target is left). The failure alerts read
kube-state-metrics. Every alert carries `severity` (critical pages, warning is a ticket),
`service`, a summary and the `runbook_url` of docs/runbooks/<alert>.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from components.service_signals import ServiceSignals, number

# (alert, burn rate, long window, short window, for, severity)
BURN_RATE_ALERTS = [
    ("ErrorBudgetBurnFast", 14.4, "1h", "5m", "2m", "critical"),
    ("ErrorBudgetBurnSustained", 6.0, "6h", "30m", "15m", "critical"),
    ("ErrorBudgetBurnSlow", 1.0, "3d", "6h", "1h", "warning"),
]
STANDARD_ALERTS = ["ServiceDown"] + [alert for alert, *_ in BURN_RATE_ALERTS] + [
    "LatencyP99AboveTarget", "CircuitBreakerOpen", "PodsCrashLooping", "HpaAtMaxReplicas",
    "PdbTooFewHealthyPods", "RolloutStuck"]
BREAKER_CLOSED = 0  # <prefix>_circuit_breaker_state: 0 closed, 1 half-open, 2 open
ERRORS = 'code=~"5.."'  # answers the service failed (4xx are the caller's)


@dataclass(frozen=True)
class CustomAlert:
    """An alert of the service's own, declared in its stack config."""

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str


def _selector(**labels: str) -> str:
    return "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


class _Rules:
    def __init__(self, spec: ServiceSignals, runbooks_url: str, custom: Sequence[CustomAlert]):
        self.spec = spec
        self.runbooks_url = runbooks_url.rstrip("/")
        self.custom = custom
        self.budget = spec.error_budget

    def own(self, metric: str, *matchers: str, users: bool = False) -> str:
        """The service's own series of `metric`, narrowed by `matchers`; `users`: leaving out
        the probe and metrics routes."""
        parts = [self.spec.selector(), *matchers]
        if users and self.spec.user_routes:
            parts.append(self.spec.user_routes)
        return f"{metric}{{{','.join(parts)}}}"

    def error_ratio(self, window: str) -> str:
        return f"job:{self.spec.metric_prefix}_http_request_errors:ratio_rate{window}"

    def error_ratio_expr(self, window: str, *matchers: str, by: str = "namespace, job",
                         zero_without_errors: bool = False) -> str:
        """The share of the users' requests answered with a 5xx over `window`: what each
        `error_ratio` recording records, and what a rollout's analysis asks of the new
        version's own series (`matchers`, e.g. its track). No 5xx series exists before the
        first 5xx, so the ratio is empty then; `zero_without_errors` makes it 0 wherever there
        are requests (an analysis must tell "no error" from "no data")."""
        requests = f"{self.spec.metric_prefix}_http_requests_total"
        errors = f"sum by ({by}) (rate({self.own(requests, ERRORS, *matchers, users=True)}[{window}]))"
        total = f"sum by ({by}) (rate({self.own(requests, *matchers, users=True)}[{window}]))"
        if zero_without_errors:
            errors = f"({errors}\nor\n{total} * 0)"
        return f"{errors}\n/\n{total}"

    def requests_expr(self, window: str, *matchers: str, by: str = "namespace, job") -> str:
        """How many of the users' requests the series of `matchers` counted over `window`
        (the denominator of the error ratio, as a count)."""
        requests = f"{self.spec.metric_prefix}_http_requests_total"
        return f"sum by ({by}) (increase({self.own(requests, *matchers, users=True)}[{window}]))"

    def latency_objectives(self, window: str, *matchers: str, by: str = "namespace, job"
                           ) -> list[tuple[str | None, str, float]]:
        """(route or None for the shared objective, p99 expression over `window`, objective in
        seconds): one over the routes that share the service's objective, one per route with
        an objective of its own (left out of the shared one)."""
        latency = f"{self.spec.metric_prefix}_http_request_duration_seconds_bucket"
        own_routes = self.spec.route_latency_p99_seconds
        shared = [self.spec.route_matcher("!~", list(own_routes))] if own_routes else []
        found: list[tuple[str | None, str, float]] = [(None, (
            f"histogram_quantile(0.99, sum by ({by}, le) "
            f"(rate({self.own(latency, *shared, *matchers, users=True)}[{window}])))"),
            self.spec.latency_p99_seconds)]
        for route, seconds in sorted(own_routes.items()):
            found.append((route, (
                f"histogram_quantile(0.99, sum by ({by}, le) "
                f"(rate({self.own(latency, self.spec.route_matcher('=~', [route]), *matchers)}"
                f"[{window}])))"), seconds))
        return found

    def alert(self, name: str, expr: str, for_: str, severity: str, summary: str,
              **labels: str) -> dict[str, Any]:
        return {"alert": name, "expr": expr, "for": for_,
                "labels": {"severity": severity, "service": self.spec.service, **labels},
                "annotations": {"summary": summary,
                                "runbook_url": f"{self.runbooks_url}/{name}.md"}}

    def slo_group(self) -> dict[str, Any]:
        windows = sorted({window for _, _, long, short, _, _ in BURN_RATE_ALERTS
                          for window in (long, short)}, key=_seconds)
        rules: list[dict[str, Any]] = [self.service_down()] + [
            {"record": self.error_ratio(window), "expr": self.error_ratio_expr(window)}
            for window in windows]
        for alert, rate, long, short, for_, severity in BURN_RATE_ALERTS:
            threshold = number(rate * self.budget)
            rules.append(self.alert(
                alert,
                f"{self.own(self.error_ratio(long))} > {threshold}\nand\n"
                f"{self.own(self.error_ratio(short))} > {threshold}",
                for_, severity,
                f"{self.spec.service} is spending its {number(self.spec.availability)}% "
                f"availability error budget {number(rate)}x as fast as it accrues "
                f"(over {long} and {short})"))
        rules += self.latency_alerts()
        return {"name": f"{self.spec.service}.slo", "rules": rules}

    def latency_alerts(self) -> list[dict[str, Any]]:
        """One p99 alert over the routes that share the service's objective, and one per route
        with an objective of its own (it is left out of the shared one)."""
        alerts = []
        for route, expr, seconds in self.latency_objectives("5m"):
            to = f" to {route}" if route else ""
            alerts.append(self.alert(
                "LatencyP99AboveTarget", f"{expr}\n> {number(seconds)}", "10m", "warning",
                f"{self.spec.service} answers 1 request in 100{to} slower than its "
                f"{number(seconds * 1000)} ms p99 target", **({"route": route} if route else {})))
        return alerts

    def service_down(self) -> dict[str, Any]:
        """No pod of the service answers Prometheus' scrape: all are down (`up` 0), or there is
        no target left at all (`absent`, which carries the selector's namespace and job)."""
        up = f"up{{{self.spec.selector()}}}"
        return self.alert(
            "ServiceDown",
            f"sum by (namespace, job) ({up}) == 0\nor\nabsent({up})",
            "3m", "critical",
            f"Prometheus has scraped no pod of {self.spec.service} for 3 minutes: every pod is "
            f"down, crash-looping or cut off, and the error-budget alerts cannot see it")

    def service_group(self) -> dict[str, Any] | None:
        if not self.spec.circuit_breaker:
            return None
        # Around a dependency that stays down the breaker cycles open, half-open (one probe in
        # flight), open again: a scrape may read either, so the alert asks for "not closed",
        # and for an opening (a trip or a failed probe) in the last 10 minutes, so that a
        # breaker left open by traffic that stopped does not alert for ever.
        state = f"{self.spec.metric_prefix}_circuit_breaker_state"
        openings = self.own(f"{self.spec.metric_prefix}_circuit_breaker_transitions_total",
                            'to="open"')
        return {"name": f"{self.spec.service}.dependencies", "rules": [self.alert(
            "CircuitBreakerOpen",
            f"max by (namespace, job) ({self.own(state)}) > {BREAKER_CLOSED}\n"
            f"and on (namespace, job)\n"
            f"sum by (namespace, job) (increase({openings}[10m])) > 0",
            "5m", "warning",
            f"{self.spec.service} has stopped calling a dependency: its circuit breaker has "
            f"stayed open (or half-open, its probes failing) for 5 minutes")]}

    def kubernetes_group(self) -> dict[str, Any]:
        name, ns = self.spec.service, self.spec.namespace

        def ksm(metric: str, kind: str, **extra: str) -> str:
            return f"{metric}{_selector(namespace=ns, **{kind: name}, **extra)}"

        hpa = "max by (namespace, horizontalpodautoscaler) ({})".format
        pdb = "max by (namespace, poddisruptionbudget) ({})".format
        return {"name": f"{name}.kubernetes", "rules": [
            self.alert(
                "PodsCrashLooping",
                "max by (namespace, pod, container) (max_over_time("
                + ksm("kube_pod_container_status_waiting_reason", "container",
                      reason="CrashLoopBackOff") + "[5m])) >= 1",
                "15m", "warning", f"a container of {name} keeps crashing and restarting"),
            self.alert(
                "HpaAtMaxReplicas",
                hpa(ksm("kube_horizontalpodautoscaler_status_current_replicas",
                        "horizontalpodautoscaler"))
                + "\n>=\n"
                + hpa(ksm("kube_horizontalpodautoscaler_spec_max_replicas",
                          "horizontalpodautoscaler")),
                "15m", "warning",
                f"{name} has run at its autoscaler's maximum replicas for 15 minutes"),
            self.alert(
                "PdbTooFewHealthyPods",
                pdb(ksm("kube_poddisruptionbudget_status_current_healthy", "poddisruptionbudget"))
                + "\n<\n"
                + pdb(ksm("kube_poddisruptionbudget_status_desired_healthy",
                          "poddisruptionbudget")),
                "15m", "warning",
                f"{name} has fewer healthy pods than its disruption budget requires"),
            self.alert(
                "RolloutStuck",
                "max by (namespace, deployment) ("
                + ksm("kube_deployment_status_condition", "deployment", condition="Progressing",
                      status="false") + ") == 1",
                "15m", "warning",
                f"the roll-out of {name} has stopped making progress"),
        ]}

    def custom_group(self) -> dict[str, Any] | None:
        if not self.custom:
            return None
        return {"name": f"{self.spec.service}.custom", "rules": [
            self.alert(a.alert, a.expr, a.for_, a.severity, a.summary) for a in self.custom]}


def _seconds(window: str) -> int:
    return int(window[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[window[-1]]


def service_queries(signals: ServiceSignals) -> _Rules:
    """The expressions the service's rules are made of, for asking Prometheus the same
    questions over other windows and series (a rollout's analysis)."""
    return _Rules(signals, "", ())


def service_rule_groups(signals: ServiceSignals, runbooks_url: str,
                        custom: Sequence[CustomAlert] = ()) -> list[dict[str, Any]]:
    """The rule groups of one service: SLO (recording rules and alerts), dependencies,
    Kubernetes failures, and the service's own alerts; runbooks under `runbooks_url`."""
    rules = _Rules(signals, runbooks_url, custom)
    groups = [rules.slo_group(), rules.service_group(), rules.kubernetes_group(),
              rules.custom_group()]
    return [group for group in groups if group is not None]
