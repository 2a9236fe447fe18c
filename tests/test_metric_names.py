"""Every metric an alert rule or a dashboard panel of a Go service reads is one the real service
binary exposes: each service whose environment monitors it runs on loopback as its stack
configures it, answers some traffic (its probes, its metrics path, a route it does not have),
and its /metrics is scraped and compared. What a service exports from its start (series at zero
for each outcome of its calls, its breaker's state) must be there without calling anything."""
from __future__ import annotations

import re
import urllib.request

import pytest
import yaml

from tests.conftest import Stack, free_port, http_status, stacks_of
from tests.test_workload_wiring import folder_service, pod_environment, start_service

HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def monitored(stack: Stack) -> bool:
    """Whether the stack's environment turns monitoring on (its alerts and dashboard exist)."""
    return bool(stack.environment.configured("monitoring", {}).get("enabled"))


MONITORED = [s for s in stacks_of("go-service") if monitored(s)]


def exposed_families(text: str) -> set[str]:
    """Metric family names of a Prometheus text exposition (its `# TYPE` lines)."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def used_metrics(exprs: list[str], prefixes: tuple[str, ...]) -> set[str]:
    """The service's own metric names the expressions read; a histogram's series
    (`<family>_bucket`, `_sum`, `_count`) by family, as the exposition's `# TYPE` names it.
    Recording rules (`level:metric:operations`) are not the service's."""
    names = set()
    for expr in exprs:
        for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
            if token.startswith(prefixes) and ":" not in token:
                family = HISTOGRAM_SERIES.sub("", token)
                names.add(family if family.endswith("_seconds") else token)
    return names


def rule_and_panel_exprs(folder) -> list[str]:
    name = folder_service(folder)
    rule = yaml.safe_load((folder / f"prometheusrule-{name}.yaml").read_text())
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    config_map = yaml.safe_load((folder / f"configmap-{name}-dashboard.yaml").read_text())
    dashboard = yaml.safe_load(next(iter(config_map["data"].values())))
    exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return exprs


def test_the_repository_has_a_monitored_service():
    assert MONITORED


@pytest.mark.parametrize("stack", MONITORED, ids=str)
def test_every_metric_the_alerts_and_the_dashboard_read_is_exposed_by_the_binary(
        rendered_stack, go_service_binary, tmp_path, stack):
    folder = rendered_stack(stack)
    service = folder_service(folder)
    monitor = yaml.safe_load((folder / f"servicemonitor-{service}.yaml").read_text())
    (endpoint,) = monitor["spec"]["endpoints"]  # what Prometheus scrapes, scraped here
    port = free_port()
    env, spec = pod_environment(folder, tmp_path, port)
    # A peer the service calls is unreachable here (e.g. the gateway's WORKER_URL): it is not
    # called, and what the alerts read of those calls is exported from the start.
    base = f"http://127.0.0.1:{port}"
    container = spec["container"]
    probes = [container[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe",
                                                         "readinessProbe")]
    process = start_service(go_service_binary(service, stack.root), env, base, probes[0])
    try:
        for path in probes:
            assert http_status(base + path) == 200, path
        assert http_status(base + "/no-such-route-" + service) == 404
        with urllib.request.urlopen(base + endpoint["path"], timeout=5) as response:
            exposition = response.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)
    prefix = stack.configured("monitoring", {}).get("metric_prefix") or service.replace("-", "_")
    families = exposed_families(exposition)
    used = used_metrics(rule_and_panel_exprs(folder), (prefix + "_", "go_", "process_"))
    assert used, "no metric of the service is read by its alerts or dashboard"
    assert sorted(used - families) == [], f"read but not exposed; exposed: {sorted(families)}"
