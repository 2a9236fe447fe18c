"""Every metric an alert rule or a dashboard panel of a Go service reads is one the real service
binary exposes: the gateway runs on loopback as its stack configures it, serves some traffic
(reads, a miss, Worker calls that fail), and its /metrics is scraped and compared."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
import yaml

from tests.conftest import free_port, stacks_of_kind
from tests.test_workload_wiring import folder_service, pod_environment, start_service

GO_STACKS = stacks_of_kind("go-service")
HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def request(url: str, body: bytes | None = None) -> int:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers),
                                    timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


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


def rule_and_panel_exprs(rendered, stack: str) -> list[str]:
    folder = rendered / stack
    name = folder_service(folder)
    rule = yaml.safe_load((folder / f"prometheusrule-{name}.yaml").read_text())
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    config_map = yaml.safe_load((folder / f"configmap-{name}-dashboard.yaml").read_text())
    dashboard = json.loads(next(iter(config_map["data"].values())))
    exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return exprs


@pytest.mark.parametrize("stack", GO_STACKS)
def test_every_metric_the_alerts_and_the_dashboard_read_is_exposed_by_the_binary(
        rendered, go_service_binary, tmp_path, stack):
    folder = rendered / stack
    monitor = yaml.safe_load((folder / f"servicemonitor-{folder_service(folder)}.yaml").read_text())
    (endpoint,) = monitor["spec"]["endpoints"]  # what Prometheus scrapes, scraped here
    port = free_port()
    env, _ = pod_environment(folder, tmp_path, port)
    # The Worker is unreachable here: calls fail, which is traffic the outcome metrics count.
    env["WORKER_URL"] = f"http://127.0.0.1:{free_port()}"
    base = f"http://127.0.0.1:{port}"
    process = start_service(go_service_binary(folder_service(folder)), env, base, "/healthz")
    try:
        catalog = json.loads(urllib.request.urlopen(base + "/v1/modules", timeout=5).read())
        name = catalog["modules"][0]["name"] if isinstance(catalog, dict) else catalog[0]["name"]
        assert request(f"{base}/v1/modules/{name}") == 200
        assert request(f"{base}/v1/modules/no-such-module") == 404
        for _ in range(8):  # enough failures to open the breaker
            request(f"{base}/v1/ai/complete", json.dumps(
                {"module": name, "prompt": "hello"}).encode())
        with urllib.request.urlopen(base + endpoint["path"], timeout=5) as response:
            exposition = response.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)
    families = exposed_families(exposition)
    used = used_metrics(rule_and_panel_exprs(rendered, stack), ("gateway_", "go_", "process_"))
    assert used, "no metric of the service is read by its alerts or dashboard"
    assert sorted(used - families) == [], f"read but not exposed; exposed: {sorted(families)}"
